using System.Text.Json.Nodes;

namespace Balancer.Tests.Deployment;

/// <summary>
/// docker-compose.yml, validated by docker-compose itself (no Docker engine here), then its resolved form
/// checked against what the stack must be: who listens where, what is mounted, what is published.
/// </summary>
public sealed class ComposeTests
{
    private static readonly Lazy<JsonNode> Resolved = new(Resolve);

    [Fact]
    public void ComposeFile_IsValid_AndDefinesTheWholeStack()
    {
        var services = Services().Select(s => s.Key).Order(StringComparer.Ordinal);

        Assert.Equal(["backend-a", "backend-b", "backend-c", "balancer", "grafana", "prometheus", "tls-init"], services);
    }

    [Fact]
    public void Balancer_PublishesTheProxyEverywhere_AndManagementOnLoopbackOnly()
    {
        var ports = Ports("balancer");

        Assert.Equal(3, ports.Count);
        Assert.Contains(ports, p => p.Target == 8080 && p.Published == 8080 && p.HostIp is null);
        Assert.Contains(ports, p => p.Target == 8443 && p.Published == 8443 && p.HostIp is null);
        Assert.Contains(ports, p => p.Target == 9091 && p.Published == 9091 && p.HostIp == "127.0.0.1");
        Assert.All(["backend-a", "backend-b", "backend-c", "prometheus", "grafana"], s => Assert.All(Ports(s), p => Assert.Equal("127.0.0.1", p.HostIp)));
    }

    [Fact]
    public void Balancer_ReadsItsConfigFromAHostDirectory_ReadOnly_WithPolling()
    {
        var balancer = Services()["balancer"]!;

        var mount = Assert.Single(balancer["volumes"]!.AsArray().Select(v => (string)v!));
        Assert.Equal($"{Repo.PathOf("deploy/config")}:/etc/balancer:ro", mount);
        Assert.Equal(["--config", "/etc/balancer/balancer.json"], balancer["command"]!.AsArray().Select(a => (string?)a));
        Assert.Equal("1", (string?)balancer["environment"]!["DOTNET_USE_POLLING_FILE_WATCHER"]);
        Assert.True(File.Exists(Repo.PathOf(DeployConfig.Path)));
    }

    [Fact]
    public void TlsInit_MakesTheCertificate_WhereTheBalancerConfigReadsIt_BeforeTheBalancerStarts()
    {
        var init = Services()["tls-init"]!;
        var volumes = init["volumes"]!.AsArray().Select(v => (string)v!).ToList();
        var command = init["command"]!.AsArray().Select(a => (string)a!).ToList();

        // The repository's script, read-only, run with bash: options, then the folder, then the names.
        var script = Assert.Single(volumes, v => v.StartsWith(Repo.PathOf(SelfSignedCertTests.Script) + ":", StringComparison.Ordinal)).Split(':');
        Assert.Equal("ro", script[2]);
        Assert.Equal(["bash", script[1], "--group", "1654", "/tls", "localhost", "balancer", "127.0.0.1"], command);

        // It writes into deploy/config/tls, which the balancer sees inside its /etc/balancer mount: exactly
        // the files the shipped config names.
        Assert.Contains($"{Repo.PathOf("deploy/config/tls")}:/tls:rw", volumes);
        Assert.Contains($"{Repo.PathOf("deploy/config")}:/etc/balancer:ro", Services()["balancer"]!["volumes"]!.AsArray().Select(v => (string?)v));
        Assert.Equal(DeployConfig.CertificatePath, (string?)DeployConfig.Load()["Balancer"]!["Tls"]!["CertificatePath"]);
        Assert.Equal(DeployConfig.KeyPath, (string?)DeployConfig.Load()["Balancer"]!["Tls"]!["KeyPath"]);
        Assert.Equal(("/etc/balancer/tls/tls.crt", "/etc/balancer/tls/tls.key"), (DeployConfig.CertificatePath, DeployConfig.KeyPath));
        Assert.Equal("/deploy/config/tls/", Repo.Read(".gitignore").Split('\n').Single(l => l.Contains("deploy/config/tls", StringComparison.Ordinal)));

        // The balancer starts only once the certificate is there (it exits 1 without one).
        Assert.Equal("service_completed_successfully", (string?)Services()["balancer"]!["depends_on"]!["tls-init"]!["condition"]);

        // Pinned to the runtime patch the images run, nothing it does not need: no network, no restart,
        // read-only, only the capabilities to write into the host folder and hand the key to the balancer's group.
        Assert.Equal($"mcr.microsoft.com/dotnet/runtime-deps:{DockerfileTests.RuntimeVersion("src/Balancer/Dockerfile")}-noble", (string?)init["image"]);
        Assert.Equal("none", (string?)init["network_mode"]);
        Assert.Null(init["restart"]);
        Assert.Null(init["ports"]);
        Assert.True((bool)init["read_only"]!);
        Assert.Equal(["ALL"], init["cap_drop"]!.AsArray().Select(c => (string?)c));
        Assert.Equal(["CHOWN", "DAC_OVERRIDE"], init["cap_add"]!.AsArray().Select(c => (string?)c));
    }

    [Fact]
    public void Secrets_AreOnlyPassedThrough_NeverWrittenInTheComposeFile()
    {
        // Null in the resolved file means "take it from the environment or .env if set, else leave unset".
        Assert.Null(Services()["balancer"]!["environment"]!["Balancer__Management__Token"]);
        Assert.Null(Services()["grafana"]!["environment"]!["GF_SECURITY_ADMIN_PASSWORD"]);
        var example = Repo.Read("deploy/.env.example");
        Assert.Contains("#Balancer__Management__Token=", example, StringComparison.Ordinal);
        Assert.Contains("#GF_SECURITY_ADMIN_PASSWORD=", example, StringComparison.Ordinal);
    }

    [Fact]
    public void Backends_ListenWhereTheBalancerConfigSendsTraffic()
    {
        foreach (var (id, address) in DeployConfig.Destinations())
        {
            var uri = new Uri(address);
            var service = Services()[uri.Host];
            Assert.True(service is not null, $"destination {id} points at {uri.Host}, which is not a compose service");
            Assert.Equal(id, (string?)service!["environment"]!["BACKEND_NAME"]);
            Assert.Equal($"http://0.0.0.0:{uri.Port}", (string?)service["environment"]!["ASPNETCORE_URLS"]);
            Assert.Equal("src/SampleBackend/Dockerfile", (string?)service["build"]!["dockerfile"]);
            var grpc = new Uri(DeployConfig.Destinations("grpc")[id]);
            Assert.Equal(uri.Host, grpc.Host);
            Assert.Equal($"http://0.0.0.0:{grpc.Port}", (string?)service["environment"]!["BACKEND_GRPC_URLS"]);
        }

        Assert.Equal("src/Balancer/Dockerfile", (string?)Services()["balancer"]!["build"]!["dockerfile"]);
    }

    [Fact]
    public void Monitoring_MountsTheSharedPrometheusAndGrafanaFiles_WithAnonymousViewing()
    {
        var prometheus = Services()["prometheus"]!["volumes"]!.AsArray().Select(v => (string)v!).ToList();
        var grafana = Services()["grafana"]!;
        var grafanaVolumes = grafana["volumes"]!.AsArray().Select(v => (string)v!).ToList();

        Assert.Contains($"{Repo.PathOf("prometheus.yml")}:/etc/prometheus/prometheus.yml:ro", prometheus);
        Assert.Contains($"{Repo.PathOf("grafana/provisioning")}:/etc/grafana/provisioning:ro", grafanaVolumes);
        Assert.Contains($"{Repo.PathOf("grafana/dashboards")}:{GrafanaDashboardsPath}:ro", grafanaVolumes);
        Assert.Equal("true", (string?)grafana["environment"]!["GF_AUTH_ANONYMOUS_ENABLED"]);
        Assert.Equal("Viewer", (string?)grafana["environment"]!["GF_AUTH_ANONYMOUS_ORG_ROLE"]);
        Assert.Contains($"{GrafanaDashboardsPath}/*.json", string.Join(' ', grafana["entrypoint"]!.AsArray().Select(e => (string?)e)), StringComparison.Ordinal);
        Assert.Matches(@"^prom/prometheus:v\d+\.\d+\.\d+$", (string?)Services()["prometheus"]!["image"]);
        Assert.Matches(@"^grafana/grafana:\d+\.\d+\.\d+$", (string?)grafana["image"]);
    }

    [Fact]
    public void GrafanaDashboardProvider_LooksWhereComposeMountsTheDashboards()
    {
        var providers = Directory.GetFiles(Repo.PathOf("grafana/provisioning/dashboards"), "*.y*ml")
            .SelectMany(f => Repo.Yaml(File.ReadAllText(f))["providers"]!.AsArray())
            .Select(p => (string?)p!["options"]!["path"])
            .ToList();

        Assert.NotEmpty(providers);
        Assert.All(providers, path => Assert.Equal(GrafanaDashboardsPath, path!.TrimEnd('/')));
        Assert.NotEmpty(Directory.GetFiles(Repo.PathOf("grafana/dashboards"), "*.json"));
    }

    [Fact]
    public void PrometheusConfig_PassesPromtool_AndScrapesEveryComposeService()
    {
        var check = Repo.Run("promtool", ["check", "config", "prometheus.yml"]);
        Assert.True(check.ExitCode == 0, check.ToString());

        var targets = Repo.Yaml(Repo.Read("prometheus.yml"))["scrape_configs"]!.AsArray()
            .SelectMany(job => job!["static_configs"]?.AsArray() ?? [])
            .SelectMany(config => config!["targets"]!.AsArray().Select(t => (string?)t))
            .ToList();
        Assert.Contains("balancer:9091", targets);
        foreach (var address in DeployConfig.Destinations().Values)
        {
            var uri = new Uri(address);
            Assert.Contains($"{uri.Host}:{uri.Port}", targets);
        }
    }

    private const string GrafanaDashboardsPath = "/var/lib/grafana/dashboards";

    private static JsonObject Services() => Resolved.Value["services"]!.AsObject();

    private static List<(int Target, int Published, string? HostIp)> Ports(string service)
    {
        // docker-compose 1.29 prints "127.0.0.1:9091:9091/tcp" for host-bound ports and a mapping otherwise.
        var ports = new List<(int, int, string?)>();
        foreach (var port in Services()[service]!["ports"]!.AsArray())
        {
            if (port is JsonObject mapping)
            {
                ports.Add(((int)mapping["target"]!, (int)mapping["published"]!, (string?)mapping["host_ip"]));
                continue;
            }

            var parts = ((string)port!).Split('/')[0].Split(':');
            ports.Add(parts.Length == 3
                ? (int.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture), int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture), parts[0])
                : (int.Parse(parts[^1], System.Globalization.CultureInfo.InvariantCulture), int.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture), null));
        }

        return ports;
    }

    private static JsonNode Resolve()
    {
        // An empty environment for the variables the file passes through, so a developer's shell or .env
        // cannot change what is checked.
        var env = new Dictionary<string, string?>
        {
            ["COMPOSE_PROJECT_NAME"] = "yarp-balancer-test",
            ["Balancer__Management__Token"] = null,
            ["GF_SECURITY_ADMIN_PASSWORD"] = null,
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = null,
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = null,
        };
        var emptyEnvFile = Path.GetTempFileName();
        try
        {
            var result = Repo.Run("docker-compose", ["--project-directory", Repo.Root, "--env-file", emptyEnvFile, "-f", "docker-compose.yml", "config"], env: env);
            Assert.True(result.ExitCode == 0, "docker-compose config rejected docker-compose.yml: " + result);
            return Repo.Yaml(result.Stdout);
        }
        finally
        {
            File.Delete(emptyEnvFile);
        }
    }
}
