using Balancer.Tests.Infrastructure;

namespace Balancer.Tests.Tls;

/// <summary>A certificate that cannot serve stops the start: exit 1, naming the key and the file.</summary>
[Collection(Integration.FunctionalCollection.Name)]
public sealed class CertificateStartupTests : IDisposable
{
    private readonly TestCertificates _certificates = new();
    private readonly StringWriter _stderr = new();
    private readonly TextWriter _originalError = Console.Error;

    public CertificateStartupTests() => Console.SetError(_stderr);

    public static TheoryData<string> Cases => ["missing certificate", "missing key", "not PEM", "key of another certificate", "not yet valid", "expired"];

    [Theory]
    [MemberData(nameof(Cases))]
    public void BrokenCertificate_AtStartUp_ExitsOne_NamingKeyAndFile(string name)
    {
        var good = _certificates.Issue("good");
        var other = _certificates.Issue("other");
        var (certificatePath, keyPath, key, file, reason) = name switch
        {
            "missing certificate" => (Path.Combine(_certificates.Directory, "nope.crt"), good.KeyPath, "Balancer:Tls:CertificatePath", Path.Combine(_certificates.Directory, "nope.crt"), "cannot read"),
            "missing key" => (good.CertificatePath, Path.Combine(_certificates.Directory, "nope.key"), "Balancer:Tls:KeyPath", Path.Combine(_certificates.Directory, "nope.key"), "cannot read"),
            "not PEM" => (Write("garbage.crt", "not a certificate"), good.KeyPath, "Balancer:Tls:CertificatePath", Path.Combine(_certificates.Directory, "garbage.crt"), "holds no PEM certificate"),
            "key of another certificate" => (good.CertificatePath, other.KeyPath, "Balancer:Tls:KeyPath", other.KeyPath, "does not match the certificate in " + good.CertificatePath),
            "not yet valid" => Pair(_certificates.Issue("future", notBefore: DateTimeOffset.UtcNow.AddDays(2)), "is not valid before"),
            _ => Pair(_certificates.Issue("past", notBefore: DateTimeOffset.UtcNow.AddDays(-30), notAfter: DateTimeOffset.UtcNow.AddDays(-1)), "expired at"),
        };
        var config = Write("balancer.json", $$"""
            { "Balancer": { "Listen": ["http://127.0.0.1:0", "https://127.0.0.1:0"], "Management": { "Listen": "http://127.0.0.1:0" },
                            "Tls": { "CertificatePath": "{{certificatePath}}", "KeyPath": "{{keyPath}}" } },
              "ReverseProxy": { "Routes": { "r": { "ClusterId": "c", "Match": { "Path": "{**all}" } } },
                                "Clusters": { "c": { "Destinations": { "A": { "Address": "http://127.0.0.1:5001/" } } } } } }
            """);

        var exit = Program.Main(["--config", config]);

        Assert.Equal(1, exit);
        var line = Assert.Single(_stderr.ToString().Split('\n'), l => l.Trim().StartsWith(key + ": ", StringComparison.Ordinal));
        Assert.Contains(file, line, StringComparison.Ordinal);
        Assert.Contains(reason, line, StringComparison.Ordinal);

        (string, string, string, string, string) Pair(TestCertificates.Issued issued, string why) =>
            (issued.CertificatePath, issued.KeyPath, "Balancer:Tls:CertificatePath", issued.CertificatePath, why);
    }

    [Fact]
    public void RelativePaths_AreTakenFromTheConfigFilesFolder()
    {
        var good = _certificates.Issue("relative");
        var config = Write("balancer.json", """
            { "Balancer": { "Listen": "https://127.0.0.1:0", "Management": { "Listen": "http://127.0.0.1:0" },
                            "Tls": { "CertificatePath": "relative.crt", "KeyPath": "relative.key" } },
              "ReverseProxy": { "Routes": { "r": { "ClusterId": "c", "Match": { "Path": "{**all}" } } },
                                "Clusters": { "c": { "Destinations": { "A": { "Address": "http://127.0.0.1:5001/" } } } } } }
            """);

        using var app = Balancer.Hosting.BalancerHost.Create(config, []);

        var store = app.Services.GetRequiredService<Balancer.Tls.CertificateStore>();
        Assert.Equal(good.Serial, store.Select(null).Serial);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task CertificateFiles_ArePolledOnlyWhenACertificateIsConfigured(bool https)
    {
        var issued = _certificates.Issue("polled");
        var tls = https ? $$""", "Tls": { "CertificatePath": "{{issued.CertificatePath}}", "KeyPath": "{{issued.KeyPath}}" }""" : "";
        var config = Write("balancer.json", $$"""
            { "Balancer": { "Listen": "{{(https ? "https" : "http")}}://127.0.0.1:0", "Management": { "Listen": "http://127.0.0.1:0" }{{tls}} },
              "ReverseProxy": { "Routes": { "r": { "ClusterId": "c", "Match": { "Path": "{**all}" } } },
                                "Clusters": { "c": { "Destinations": { "A": { "Address": "http://127.0.0.1:5001/" } } } } } }
            """);
        using var app = Balancer.Hosting.BalancerHost.Create(config, []);
        var store = app.Services.GetRequiredService<Balancer.Tls.CertificateStore>();

        await store.StartAsync(CancellationToken.None);

        Assert.Equal(https, store.Polling);
        await store.StopAsync(CancellationToken.None);
    }

    public void Dispose()
    {
        Console.SetError(_originalError);
        _certificates.Dispose();
    }

    private string Write(string name, string text)
    {
        var path = Path.Combine(_certificates.Directory, name);
        File.WriteAllText(path, text);
        return path;
    }
}
