using System.Text.Json.Nodes;
using Balancer.Hosting;
using Balancer.Tests.Infrastructure;

namespace Balancer.Tests.Deployment;

/// <summary>
/// The balancer config the compose stack and the lb VM run (deploy/config/balancer.json), started for real:
/// only the addresses are rewritten (listeners to loopback port 0, backend host names to real SampleBackends
/// on loopback, /etc/balancer/ to a temporary folder); routes, policy, health checks and the certificate
/// provisioning makes (deploy/tls/self-signed-cert.sh, run as compose and the lb VM run it) are the real ones.
/// </summary>
[Collection(Integration.IntegrationCollection.Name)]
public sealed class ComposeConfigServesTests : IAsyncDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("compose-config-").FullName;
    private readonly List<BackendHost> _backends = [];
    private WebApplication? _balancer;

    [Fact]
    public async Task DeployConfig_WithAddressesOnLoopback_ProbesAllThreeBackendsUp_AndSplitsTrafficEvenly_OverHttpAndHttps()
    {
        var config = DeployConfig.Load();
        Assert.Equal(["http://0.0.0.0:8080", "https://0.0.0.0:8443"], config["Balancer"]!["Listen"]!.AsArray().Select(l => (string?)l));
        Assert.Equal("http://0.0.0.0:9091", (string?)config["Balancer"]!["Management"]!["Listen"]);
        // Management on every interface of a private network (the compose network, the VMs' host-only
        // network): Prometheus scrapes it without a token unless one is set (deploy/.env.example).
        Assert.True((bool)config["Balancer"]!["Management"]!["AllowAnonymous"]!);
        config["Balancer"]!["Listen"] = new JsonArray("http://127.0.0.1:0", "https://127.0.0.1:0");
        config["Balancer"]!["Management"]!["Listen"] = "http://127.0.0.1:0";

        // The temporary folder stands for /etc/balancer, and the certificate is made in it as provisioning makes it.
        var tls = config["Balancer"]!["Tls"]!.AsObject();
        Assert.Equal((DeployConfig.CertificatePath, DeployConfig.KeyPath), ((string?)tls["CertificatePath"], (string?)tls["KeyPath"]));
        var made = SelfSignedCertTests.Run(Path.Combine(_directory, "tls"), "balancer", "localhost");
        Assert.True(made.ExitCode == 0, made.ToString());
        tls["CertificatePath"] = DeployConfig.CertificatePath.Replace("/etc/balancer", _directory, StringComparison.Ordinal);
        tls["KeyPath"] = DeployConfig.KeyPath.Replace("/etc/balancer", _directory, StringComparison.Ordinal);

        var destinations = config["ReverseProxy"]!["Clusters"]!["backends"]!["Destinations"]!.AsObject();
        Assert.Equal(["A", "B", "C"], destinations.Select(d => d.Key));
        foreach (var (id, destination) in destinations)
        {
            var backend = await BackendHost.StartAsync(id, grpc: true);
            _backends.Add(backend);
            var compose = new Uri((string)destination!["Address"]!);
            Assert.Equal($"backend-{id.ToLowerInvariant()}", compose.Host);
            destination["Address"] = backend.Address.ToString();
        }

        // The gRPC cluster: the same backends' gRPC ports (5001 -> 6001), probed by the gRPC health protocol.
        var grpc = config["ReverseProxy"]!["Clusters"]!["grpc"]!["Destinations"]!.AsObject();
        Assert.Equal(["A", "B", "C"], grpc.Select(d => d.Key));
        foreach (var (id, destination) in grpc)
        {
            var compose = new Uri((string)destination!["Address"]!);
            Assert.Equal($"backend-{id.ToLowerInvariant()}", compose.Host);
            Assert.Equal(new Uri(DeployConfig.Destinations()[id]).Port + 1000, compose.Port);
            destination["Address"] = _backends.Single(b => b.Name == id).GrpcAddress!.ToString();
        }

        var path = Path.Combine(_directory, "balancer.json");
        await File.WriteAllTextAsync(path, config.ToJsonString());
        _balancer = BalancerHost.Create(path, [], b => b.Logging.ClearProviders());
        await _balancer.StartAsync();
        var listeners = _balancer.Services.GetRequiredService<Listeners>();
        using var client = new HttpClient { BaseAddress = listeners.ProxyAddress };
        using var management = new HttpClient { BaseAddress = listeners.ManagementAddress };

        // The file's active health checks (every 2 s) must find all three backends healthy.
        await Poll.UntilAsync(
            async () =>
            {
                var status = JsonNode.Parse(await management.GetStringAsync("/status"))!;
                return status["clusters"]!.AsArray().All(c => c!["destinations"]!.AsArray().All(d => (string?)d!["health"] == "Up"));
            },
            TimeSpan.FromSeconds(20),
            "all three destinations of both clusters Up in /status");

        var counts = new Dictionary<string, int>();
        for (var i = 0; i < 300; i++)
        {
            using var response = await client.GetAsync("/");
            response.EnsureSuccessStatusCode();
            var name = response.Headers.GetValues("X-Backend").Single();
            counts[name] = counts.GetValueOrDefault(name) + 1;
        }

        Assert.Equal("RoundRobin", (string?)config["ReverseProxy"]!["Clusters"]!["backends"]!["LoadBalancingPolicy"]);
        Assert.Equal(new Dictionary<string, int> { ["A"] = 100, ["B"] = 100, ["C"] = 100 }, counts);

        // HTTPS with the made certificate, checked by curl as a client told to trust it: name and chain
        // verified, HTTP/2 by ALPN, 30 requests on one connection spread 10/10/10.
        var https = listeners.ProxyAddressOf("https")!;
        var url = $"https://balancer:{https.Port}/";
        var curl = await CommandLine.RunAsync(
            CommandLine.Require("curl", "curl"),
            ["-sS", "--http2", "--cacert", Path.Combine(_directory, "tls", "tls.crt"), "--resolve", $"balancer:{https.Port}:127.0.0.1",
             "-w", "%{http_version} %{http_code} %header{x-backend}\\n", .. Enumerable.Repeat(new[] { "-o", "/dev/null", url }, 30).SelectMany(a => a)],
            TimeSpan.FromSeconds(60));
        Assert.True(curl.ExitCode == 0, curl.Error);
        var lines = curl.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(30, lines.Length);
        Assert.All(lines, line => Assert.StartsWith("2 200 ", line, StringComparison.Ordinal));
        Assert.Equal(new Dictionary<string, int> { ["A"] = 10, ["B"] = 10, ["C"] = 10 }, lines.GroupBy(l => l.Split(' ')[2]).ToDictionary(g => g.Key, g => g.Count()));
    }

    public async ValueTask DisposeAsync()
    {
        if (_balancer is not null)
        {
            await _balancer.StopAsync();
            await _balancer.DisposeAsync();
        }

        foreach (var backend in _backends)
        {
            await backend.DisposeAsync();
        }

        Directory.Delete(_directory, recursive: true);
    }
}
