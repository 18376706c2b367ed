using Balancer.Tests.Infrastructure;

namespace Balancer.Tests.Configuration;

/// <summary>Start-up failures go through Program.Main, exactly as an operator meets them.</summary>
[Collection(Integration.FunctionalCollection.Name)]
public sealed class StartupTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("balancer-startup-").FullName;
    private readonly StringWriter _stderr = new();
    private readonly TextWriter _originalError = Console.Error;

    public StartupTests() => Console.SetError(_stderr);

    [Fact]
    public void MissingConfigFile_ExitsNonZero_NamingTheFile()
    {
        var path = Path.Combine(_directory, "nope.json");

        var exit = Program.Main(["--config", path]);

        Assert.NotEqual(0, exit);
        Assert.Contains(path, _stderr.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void InvalidConfigFile_ExitsNonZero_NamingKeyAndReason()
    {
        var path = Write("""
            { "ReverseProxy": { "Routes": { "r": { "ClusterId": "c", "Match": { "Path": "{**all}" } } },
              "Clusters": { "c": { "LoadBalancingPolicy": "Fastest", "Destinations": { "A": { "Address": "not a url" } } } } } }
            """);

        var exit = Program.Main(["--config", path]);

        Assert.NotEqual(0, exit);
        var message = _stderr.ToString();
        Assert.Contains("ReverseProxy:Clusters:c:LoadBalancingPolicy: unknown policy 'Fastest'", message, StringComparison.Ordinal);
        Assert.Contains("ReverseProxy:Clusters:c:Destinations:A:Address: 'not a url' is not an absolute http:// or https:// URL", message, StringComparison.Ordinal);
    }

    [Fact]
    public void CheckConfig_ValidFile_ExitsZero_InvalidFile_ExitsOne()
    {
        var good = Write("""
            { "ReverseProxy": { "Routes": { "r": { "ClusterId": "c", "Match": { "Path": "{**all}" } } },
              "Clusters": { "c": { "Destinations": { "A": { "Address": "http://127.0.0.1:5001/" } } } } } }
            """);
        var bad = Write("""{ "ReverseProxy": { "Clusters": { "c": { "Destinations": { "A": { "Address": "http://x/", "Metadata": { "Weight": "0" } } } } } } }""");

        Assert.Equal(0, Program.Main(["--check-config", good]));
        Assert.Equal(1, Program.Main(["--check-config", bad]));
        Assert.Contains("ReverseProxy:Clusters:c:Destinations:A:Metadata:Weight: '0' is not a whole number from 1 to 1000", _stderr.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void MalformedJson_ExitsNonZero_WithLineNumber()
    {
        var path = Write("{ \"Balancer\": { \"Listen\": \"http://127.0.0.1:0\", }\n  oops }");

        Assert.NotEqual(0, Program.Main(["--config", path]));
        Assert.Contains("not valid JSON", _stderr.ToString(), StringComparison.Ordinal);
        Assert.Contains("LineNumber", _stderr.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task RealProcess_InvalidConfig_ExitsOne_NamingKey_CheckConfigExitsZeroOrOne()
    {
        var good = Write("""
            { "Balancer": { "Listen": "http://127.0.0.1:0", "Management": { "Listen": "http://127.0.0.1:0" } },
              "ReverseProxy": { "Routes": { "r": { "ClusterId": "c", "Match": { "Path": "{**all}" } } },
              "Clusters": { "c": { "Destinations": { "A": { "Address": "http://127.0.0.1:5001/" } } } } } }
            """);
        var bad = Write(File.ReadAllText(good).Replace("\"http://127.0.0.1:5001/\"", "\"http://127.0.0.1:5001/\", \"Metadata\": { \"Weight\": \"heavy\" }", StringComparison.Ordinal));

        await using (var started = BalancerProcess.Start("--config", bad))
        {
            Assert.Equal(1, await started.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            Assert.Contains("ReverseProxy:Clusters:c:Destinations:A:Metadata:Weight: 'heavy' is not a whole number from 1 to 1000", started.Output, StringComparison.Ordinal);
        }

        await using (var check = BalancerProcess.Start("--check-config", bad))
        {
            Assert.Equal(1, await check.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            Assert.Contains($"Invalid config file {bad}:", check.Output, StringComparison.Ordinal);
            Assert.Contains("Metadata:Weight: 'heavy'", check.Output, StringComparison.Ordinal);
        }

        await using (var check = BalancerProcess.Start("--check-config", good))
        {
            Assert.Equal(0, await check.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            Assert.Equal($"{good}: OK", check.Output.Trim());
        }
    }

    [Fact]
    public async Task ListenerAddressInUse_ExitsOne_SayingWhichAddress()
    {
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;
        var path = Write($$"""
            { "Balancer": { "Listen": "http://127.0.0.1:{{port}}", "Management": { "Listen": "http://127.0.0.1:0" } },
              "ReverseProxy": { "Routes": { "r": { "ClusterId": "c", "Match": { "Path": "{**all}" } } },
              "Clusters": { "c": { "Destinations": { "A": { "Address": "http://127.0.0.1:5001/" } } } } } }
            """);

        await using var balancer = BalancerProcess.Start("--config", path);

        Assert.Equal(1, await balancer.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains($"Cannot start: Failed to bind to address http://127.0.0.1:{port}: address already in use.", balancer.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", balancer.Output, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        Console.SetError(_originalError);
        Directory.Delete(_directory, recursive: true);
    }

    private string Write(string json)
    {
        var path = Path.Combine(_directory, $"{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        return path;
    }
}
