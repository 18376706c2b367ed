using System.Text.Json.Nodes;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;
using Microsoft.Extensions.Logging.Testing;

namespace Balancer.Tests.Configuration;

/// <summary>
/// Every kind of invalid config an operator can write, twice: as the file the balancer starts with (it
/// exits 1 naming the key) and as an edit of the running balancer's file (rejected as a whole: the old
/// round-robin keeps splitting exactly, the failure is counted, logged and shown in /status).
/// </summary>
[Collection(FunctionalCollection.Name)]
public sealed class InvalidConfigTests(InvalidConfigTests.RunningBalancer running) : IClassFixture<InvalidConfigTests.RunningBalancer>, IDisposable
{
    /// <summary>Placeholder for a key that appears twice in the written file, which a JSON tree cannot hold.</summary>
    private const string Twin = "__TWIN__";

    private static readonly Dictionary<string, BadConfig> Cases = new BadConfig[]
    {
        new("unknown policy", "ReverseProxy:Clusters:backends:LoadBalancingPolicy", "unknown policy 'Fastest'",
            c => Cluster(c)["LoadBalancingPolicy"] = "Fastest"),
        new("weight zero", "ReverseProxy:Clusters:backends:Destinations:A:Metadata:Weight", "'0' is not a whole number from 1 to 1000",
            c => Destination(c, "A")["Metadata"] = new JsonObject { ["Weight"] = "0" }),
        new("weight not whole", "ReverseProxy:Clusters:backends:Destinations:B:Metadata:Weight", "'1.5' is not a whole number from 1 to 1000",
            c => Destination(c, "B")["Metadata"] = new JsonObject { ["Weight"] = "1.5" }),
        new("weight negative", "ReverseProxy:Clusters:backends:Destinations:C:Metadata:Weight", "'-2' is not a whole number from 1 to 1000",
            c => Destination(c, "C")["Metadata"] = new JsonObject { ["Weight"] = -2 }),
        new("address relative", "ReverseProxy:Clusters:backends:Destinations:B:Address", "'/api/' is not an absolute http:// or https:// URL",
            c => Destination(c, "B")["Address"] = "/api/"),
        new("address not http", "ReverseProxy:Clusters:backends:Destinations:C:Address", "'ftp://127.0.0.1/' is not an absolute http:// or https:// URL",
            c => Destination(c, "C")["Address"] = "ftp://127.0.0.1/"),
        new("address without scheme", "ReverseProxy:Clusters:backends:Destinations:A:Address", "'127.0.0.1:5001' is not an absolute http:// or https:// URL",
            c => Destination(c, "A")["Address"] = "127.0.0.1:5001"),
        new("destination id twice", "ReverseProxy:Clusters:backends:Destinations:B", "duplicate key: defined at line",
            c => Destinations(c)["B" + Twin] = Destination(c, "A").DeepClone(), TwinOf: "B"),
        new("destination ids differing in case", "ReverseProxy:Clusters:backends:Destinations:b", "differing from 'B' only in case",
            c => Destinations(c)["b" + Twin] = new JsonObject { ["Metadata"] = new JsonObject { ["Weight"] = "5" } }, TwinOf: "b"),
        new("cluster ids differing in case", "ReverseProxy:Clusters:Backends", "differing from 'backends' only in case",
            c => c["ReverseProxy"]!["Clusters"]!["Backends" + Twin] = Cluster(c).DeepClone(), TwinOf: "Backends"),
        new("route id twice", "ReverseProxy:Routes:all", "duplicate key",
            c => c["ReverseProxy"]!["Routes"]!["all" + Twin] = c["ReverseProxy"]!["Routes"]!["all"]!.DeepClone(), TwinOf: "all"),
        new("health interval zero", "ReverseProxy:Clusters:backends:HealthCheck:Active:Interval", "must be positive, not '00:00:00'",
            c => Cluster(c)["HealthCheck"] = Active("00:00:00")),
        new("health interval negative", "ReverseProxy:Clusters:backends:HealthCheck:Active:Interval", "must be positive, not '-00:00:01'",
            c => Cluster(c)["HealthCheck"] = Active("-00:00:01")),
        new("health interval not a time", "ReverseProxy:Clusters:backends:HealthCheck:Active:Interval", "'2s' is not a time span such as 00:00:02",
            c => Cluster(c)["HealthCheck"] = Active("2s")),
        new("trusted proxy not an address", "Balancer:TrustedProxies:1", "'10.0.0.300' is not an IP address or CIDR range",
            c => c["Balancer"]!["TrustedProxies"] = new JsonArray("10.0.0.1", "10.0.0.300")),
        new("trusted proxy prefix too long", "Balancer:TrustedProxies:0", "'10.0.0.0/33' is not an IP address or CIDR range",
            c => c["Balancer"]!["TrustedProxies"] = new JsonArray("10.0.0.0/33")),
        new("trusted proxies not a list", "Balancer:TrustedProxies", "must be a list such as [\"10.0.0.1\"], not a single string",
            c => c["Balancer"]!["TrustedProxies"] = "10.0.0.1"),
        new("listener without port", "Balancer:Listen", "'http://127.0.0.1' has no port",
            c => c["Balancer"]!["Listen"] = "http://127.0.0.1"),
        new("listener https without certificate", "Balancer:Tls:CertificatePath", "is missing; an https:// listener needs a default certificate",
            c => c["Balancer"]!["Listen"] = "https://127.0.0.1:8443"),
        new("listener ftp", "Balancer:Listen", "'ftp://127.0.0.1:21' is not an http://, https:// or h2c:// listener address",
            c => c["Balancer"]!["Listen"] = "ftp://127.0.0.1:21"),
        new("listener list item without port", "Balancer:Listen:1", "'h2c://127.0.0.1' has no port",
            c => c["Balancer"]!["Listen"] = new JsonArray("http://127.0.0.1:0", "h2c://127.0.0.1")),
        new("management listener https", "Balancer:Management:Listen", "must be an http:// address",
            c => c["Balancer"]!["Management"]!["Listen"] = "https://127.0.0.1:9443"),
        new("certificate without key", "Balancer:Tls:KeyPath", "is missing; Balancer:Tls:CertificatePath needs the file of its private key",
            c => c["Balancer"]!["Tls"] = new JsonObject { ["CertificatePath"] = "/etc/balancer/tls.crt" }),
        new("sni name not a host", "Balancer:Tls:Sni:bad_host", "'bad_host' is not a host name or a wildcard such as *.example.com",
            c => c["Balancer"]!["Tls"] = new JsonObject { ["Sni"] = new JsonObject { ["bad_host"] = new JsonObject { ["CertificatePath"] = "/a.crt", ["KeyPath"] = "/a.key" } } }),
        new("hsts max age not a time", "Balancer:Tls:Hsts:MaxAge", "'1y' is not a time span of 0 or more",
            c => c["Balancer"]!["Tls"] = new JsonObject { ["Hsts"] = new JsonObject { ["MaxAge"] = "1y" } }),
        new("strict ciphers not a bool", "Balancer:Tls:StrictCiphers", "'sometimes' is not true or false",
            c => c["Balancer"]!["Tls"] = new JsonObject { ["StrictCiphers"] = "sometimes" }),
        new("redirect without https listener", "Balancer:Tls:RedirectHttp", "redirects need an https:// listener",
            c => c["Balancer"]!["Tls"] = new JsonObject { ["RedirectHttp"] = true }),
        new("management listener on a host name", "Balancer:Management:Listen", "host 'example.com' is not an IP address, localhost or *",
            c => c["Balancer"]!["Management"]!["Listen"] = "http://example.com:9091"),
        new("management token too short", "Balancer:Management:Token", "must be at least 16 characters",
            c => c["Balancer"]!["Management"]!["Token"] = "change-me"),
        new("body limit zero", "Balancer:Limits:MaxRequestBodySize", "'0' must be a whole number from 1 to",
            c => c["Balancer"]!["Limits"] = new JsonObject { ["MaxRequestBodySize"] = 0 }),
        new("header timeout zero", "Balancer:Limits:RequestHeadersTimeout", "must be positive, not '00:00:00'",
            c => c["Balancer"]!["Limits"] = new JsonObject { ["RequestHeadersTimeout"] = "00:00:00" }),
        new("data rate grace too short", "Balancer:Limits:MinRequestBodyDataRateGracePeriod", "must be longer than 1 second",
            c => c["Balancer"]!["Limits"] = new JsonObject { ["MinRequestBodyDataRateGracePeriod"] = "00:00:00.500" }),
        new("shutdown timeout negative", "Balancer:ShutdownTimeout", "must be positive, not '-00:00:05'",
            c => c["Balancer"]!["ShutdownTimeout"] = "-00:00:05"),
        new("drain delay negative", "Balancer:Shutdown:DrainDelay", "must be zero or positive, not '-00:00:01'",
            c => c["Balancer"]!["Shutdown"] = new JsonObject { ["DrainDelay"] = "-00:00:01" }),
        new("trace sample ratio above one", "Balancer:Tracing:SampleRatio", "'1.5' must be a number from 0 to 1",
            c => c["Balancer"]!["Tracing"] = new JsonObject { ["SampleRatio"] = 1.5 }),
        new("metrics switch not a bool", "Balancer:Metrics:Enabled", "'sometimes' is not true or false",
            c => c["Balancer"]!["Metrics"] = new JsonObject { ["Enabled"] = "sometimes" }),
        new("histogram switch not a bool", "Balancer:Metrics:PerDestinationHistograms", "'per cluster' is not true or false",
            c => c["Balancer"]!["Metrics"] = new JsonObject { ["PerDestinationHistograms"] = "per cluster" }),
        new("trace cap negative", "Balancer:Tracing:MaxTracesPerSecond", "'-1' must be a number of traces a second, 0 or more (0: no cap)",
            c => c["Balancer"]!["Tracing"] = new JsonObject { ["MaxTracesPerSecond"] = -1 }),
        new("access log directory missing", "Balancer:AccessLog:Path", "the directory of '/no/such/directory/access.log' does not exist",
            c => c["Balancer"]!["AccessLog"] = new JsonObject { ["Path"] = "/no/such/directory/access.log" }),
        new("access log buffer zero", "Balancer:AccessLog:BufferLines", "'0' must be a whole number from 1 to 10000000",
            c => c["Balancer"]!["AccessLog"] = new JsonObject { ["BufferLines"] = 0 }),
        new("rate limit negative", "Balancer:RateLimit:RequestsPerSecond", "'-1' must be a number of requests a second from 0 to 1000000",
            c => c["Balancer"]!["RateLimit"] = new JsonObject { ["RequestsPerSecond"] = -1 }),
        new("burst not whole", "Balancer:RateLimit:Burst", "'2.5' must be a whole number from 0 to 1000000",
            c => c["Balancer"]!["RateLimit"] = new JsonObject { ["RequestsPerSecond"] = 10, ["Burst"] = 2.5 }),
        new("concurrency limit negative", "Balancer:RateLimit:MaxConcurrentPerClient", "'-3' must be a whole number from 0 to 1000000",
            c => c["Balancer"]!["RateLimit"] = new JsonObject { ["MaxConcurrentPerClient"] = -3 }),
        new("route rate limit not a number", "ReverseProxy:Routes:all:Metadata:RateLimit.RequestsPerSecond", "'fast' must be a number of requests a second",
            c => c["ReverseProxy"]!["Routes"]!["all"]!["Metadata"] = new JsonObject { ["RateLimit.RequestsPerSecond"] = "fast" }),
        new("slow start not a time", "ReverseProxy:Clusters:backends:Destinations:B:Metadata:SlowStart", "'30s' is not a time span above 0",
            c => Destination(c, "B")["Metadata"] = new JsonObject { ["SlowStart"] = "30s" }),
        new("cluster slow start zero", "ReverseProxy:Clusters:backends:Metadata:SlowStart", "'00:00:00' is not a time span above 0",
            c => Cluster(c)["Metadata"] = new JsonObject { ["SlowStart"] = "00:00:00" }),
        new("state file in a missing directory", "Balancer:StateFile", "the directory of '/nonexistent-dir/state.json' does not exist",
            c => c["Balancer"]!["StateFile"] = "/nonexistent-dir/state.json"),
    }.ToDictionary(c => c.Name);

    private readonly string _directory = Directory.CreateTempSubdirectory("balancer-invalid-").FullName;
    private readonly StringWriter _stderr = new();
    private readonly TextWriter _originalError = Console.Error;

    public static TheoryData<string> Names => [.. Cases.Keys];

    [Theory]
    [MemberData(nameof(Names))]
    public async Task AtStartUp_ExitsOne_NamingKeyAndReason(string name)
    {
        var bad = Cases[name];
        var path = Path.Combine(_directory, "balancer.json");
        File.WriteAllText(path, bad.Text(running.Balancer));
        Console.SetError(_stderr);

        // A file that wrongly passed would start a server and never return: bounded, so the test fails instead.
        var exit = await Task.Run(() => Program.Main(["--config", path])).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(1, exit);
        var message = _stderr.ToString();
        Assert.Contains($"Invalid config file {path}:", message, StringComparison.Ordinal);
        Assert.Contains(message.Split('\n'), line => line.Trim().StartsWith(bad.Key + ": ", StringComparison.Ordinal) && line.Contains(bad.Reason, StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Names))]
    public async Task OnReload_IsRejectedAsAWhole_OldRoundRobinKeepsSplittingExactly(string name)
    {
        var bad = Cases[name];
        var lb = running.Balancer;
        await running.RestoreGoodConfigAsync();
        Assert.Equal(new[] { 100, 100, 100 }, await lb.CountsAsync(300));
        var failures = (await lb.MetricsAsync()).Value("balancer_config_reloads_total", ("result", "failure"));
        var successes = (await lb.MetricsAsync()).Value("balancer_config_reloads_total", ("result", "success"));

        lb.WriteConfigText(bad.Text(lb));
        await Poll.UntilAsync(
            async () => (await lb.MetricsAsync()).Value("balancer_config_reloads_total", ("result", "failure")) == failures + 1,
            TimeSpan.FromSeconds(10),
            "the rejected reload to be counted");

        var status = await lb.StatusAsync();
        Assert.Equal("failure", (string)status["lastReload"]!["result"]!);
        var error = (string)status["lastReload"]!["error"]!;
        Assert.Contains(bad.Key + ": ", error, StringComparison.Ordinal);
        Assert.Contains(bad.Reason, error, StringComparison.Ordinal);
        Assert.Equal("RoundRobin", (string)status["clusters"]![0]!["policy"]!);
        Assert.Equal(successes, (await lb.MetricsAsync()).Value("balancer_config_reloads_total", ("result", "success")));
        // The file would also have switched to IpHash, which sends all 300 from this one client to one backend.
        Assert.Equal(new[] { 100, 100, 100 }, await lb.CountsAsync(300));
        var logged = lb.App.Services.GetFakeLogCollector().GetSnapshot().Select(r => r.Message).ToList();
        Assert.Contains(logged, m => m.StartsWith("Config reload rejected, the previous config keeps serving: ", StringComparison.Ordinal) && m.Contains(bad.Key, StringComparison.Ordinal));
    }

    public void Dispose()
    {
        Console.SetError(_originalError);
        Directory.Delete(_directory, recursive: true);
    }

    private static JsonObject Cluster(JsonObject config) => config["ReverseProxy"]!["Clusters"]!["backends"]!.AsObject();

    private static JsonObject Destinations(JsonObject config) => Cluster(config)["Destinations"]!.AsObject();

    private static JsonObject Destination(JsonObject config, string id) => Destinations(config)[id]!.AsObject();

    private static JsonObject Active(string interval) =>
        new() { ["Active"] = new JsonObject { ["Enabled"] = true, ["Interval"] = interval, ["Timeout"] = "00:00:01", ["Policy"] = "ConsecutiveFailures", ["Path"] = "/health" } };

    /// <summary>
    /// One invalid config: the running balancer's own file with <paramref name="Edit"/> applied, and the
    /// policy switched to IpHash (except where the policy is what is wrong), so accepting any part of it shows.
    /// </summary>
    private sealed record BadConfig(string Name, string Key, string Reason, Action<JsonObject> Edit, string? TwinOf = null)
    {
        public string Text(BalancerFixture lb)
        {
            var config = lb.Config("IpHash");
            Edit(config);
            var text = config.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
            return TwinOf is null ? text : text.Replace($"\"{TwinOf}{Twin}\"", $"\"{TwinOf}\"", StringComparison.Ordinal);
        }
    }

    /// <summary>One balancer for every reload case: each leaves its good config in force, or its test fails.</summary>
    public sealed class RunningBalancer : IAsyncLifetime
    {
        internal BalancerFixture Balancer { get; private set; } = null!;

        public async Task InitializeAsync() =>
            Balancer = await BalancerFixture.StartAsync("RoundRobin", configure: builder => builder.Logging.AddFakeLogging());

        public async Task DisposeAsync() => await Balancer.DisposeAsync();

        /// <summary>Puts the good file back if an earlier case was wrongly accepted, so one bug fails one case.</summary>
        internal async Task RestoreGoodConfigAsync()
        {
            if ((string?)(await Balancer.StatusAsync())["clusters"]![0]!["policy"] == "RoundRobin")
            {
                return;
            }

            Balancer.WriteConfig("RoundRobin");
            await Poll.UntilAsync(async () => (string?)(await Balancer.StatusAsync())["clusters"]![0]!["policy"] == "RoundRobin", TimeSpan.FromSeconds(10), "the good config back in force");
        }
    }
}
