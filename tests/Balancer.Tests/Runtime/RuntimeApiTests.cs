using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Balancer.Tests.Health;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging.Testing;

namespace Balancer.Tests.Runtime;

/// <summary>The runtime API on real sockets: drain, maintenance, enable, weight, and what survives reloads and restarts.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class RuntimeApiTests
{
    [Fact]
    public async Task Drain_UnderLoad_NoNewRequestsToB_SlowOnesFinish200_DrainedAtZero_EnableBringsItBack()
    {
        await using var lb = await BalancerFixture.StartAsync("RoundRobin");

        // Six slow requests in round-robin order: two of them on B.
        using var slowClient = new HttpClient { BaseAddress = lb.ProxyAddress, Timeout = TimeSpan.FromSeconds(30) };
        var slow = Enumerable.Range(0, 6).Select(_ => slowClient.GetAsync("/delay/2000")).ToList();
        await Poll.UntilAsync(async () => await InFlightAsync(lb, "B") == 2, TimeSpan.FromSeconds(10), "two slow requests in flight on B");

        // Steady fast traffic throughout, each request stamped with when it was sent.
        var sent = new ConcurrentQueue<(long Start, string Backend)>();
        using var stop = new CancellationTokenSource();
        var traffic = Task.Run(async () =>
        {
            using var client = new HttpClient { BaseAddress = lb.ProxyAddress };
            while (!stop.IsCancellationRequested)
            {
                var start = Stopwatch.GetTimestamp();
                using var response = await client.GetAsync("/");
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                sent.Enqueue((start, response.Headers.GetValues("X-Backend").Single()));
            }
        });
        await Poll.UntilAsync(() => sent.Any(s => s.Backend == "B"), TimeSpan.FromSeconds(10), "fast traffic reaching B");

        var called = Stopwatch.GetTimestamp();
        using var drain = await lb.Management.PostAsync("/api/destinations/backends/B/drain", null);
        var answered = Stopwatch.GetTimestamp();
        Assert.Equal(HttpStatusCode.OK, drain.StatusCode);
        var body = JsonNode.Parse(await drain.Content.ReadAsStringAsync())!;
        // The two slow requests, plus the one fast request when the single fast client happened to be on B then.
        Assert.InRange((int)body["inFlight"]!, 2, 3);
        Assert.Equal("Draining", (string)body["destination"]!["runtime"]!["state"]!);
        Assert.Equal("Draining", await StateAsync(lb, "B"));

        var cutoff = Math.Min(answered, called + Stopwatch.Frequency / 10);
        await Poll.UntilAsync(() => sent.Count(s => s.Start > answered) >= 50, TimeSpan.FromSeconds(10), "50 requests after the drain");
        Assert.DoesNotContain(sent, s => s.Start > cutoff && s.Backend == "B");

        // The slow requests already on B finish normally; then B is Drained.
        var results = await Task.WhenAll(slow);
        Assert.All(results, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(2, results.Count(r => r.Headers.GetValues("X-Backend").Single() == "B"));
        await Poll.UntilAsync(async () => await StateAsync(lb, "B") == "Drained", TimeSpan.FromSeconds(5), "B Drained");

        using var enable = await lb.Management.PostAsync("/api/destinations/backends/B/enable", null);
        Assert.Equal(HttpStatusCode.OK, enable.StatusCode);
        var enabled = Stopwatch.GetTimestamp();
        await Poll.UntilAsync(() => sent.Any(s => s.Start > enabled && s.Backend == "B"), TimeSpan.FromSeconds(5), "traffic back on B");
        Assert.Equal("Active", await StateAsync(lb, "B"));
        await stop.CancelAsync();
        await traffic;
        foreach (var result in results)
        {
            result.Dispose();
        }
    }

    [Fact]
    public async Task WeightOverride_3_1_1_RoundRobin500Requests_Splits300_100_100_DeleteRestoresFileWeight()
    {
        await using var lb = await BalancerFixture.StartAsync("RoundRobin");

        using var put = await lb.Management.PutAsync("/api/destinations/backends/A/weight", new StringContent("3"));
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        Assert.Equal(new Dictionary<string, int> { ["A"] = 300, ["B"] = 100, ["C"] = 100 }, await lb.CountBackendsAsync(500));

        // JSON body form.
        using var json = await lb.Management.PutAsync("/api/destinations/backends/B/weight", new StringContent("{\"weight\": 2}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, json.StatusCode);
        Assert.Equal(new Dictionary<string, int> { ["A"] = 300, ["B"] = 200, ["C"] = 100 }, await lb.CountBackendsAsync(600));

        using var deleteA = await lb.Management.DeleteAsync("/api/destinations/backends/A/weight");
        using var deleteB = await lb.Management.DeleteAsync("/api/destinations/backends/B/weight");
        Assert.Equal(HttpStatusCode.OK, deleteB.StatusCode);
        Assert.Equal(new Dictionary<string, int> { ["A"] = 100, ["B"] = 100, ["C"] = 100 }, await lb.CountBackendsAsync(300));

        var a = await EntryAsync(lb, "A");
        Assert.Equal(1, (int)a["runtime"]!["fileWeight"]!);
        Assert.Null(a["runtime"]!["weightOverride"]);
        var changes = await lb.MetricsAsync();
        Assert.Equal(2, changes.Single(s => s.Name == "balancer_runtime_changes_total" && s.Labels["action"] == "weight").Value);
        Assert.Equal(2, changes.Single(s => s.Name == "balancer_runtime_changes_total" && s.Labels["action"] == "weight_removed").Value);
    }

    [Fact]
    public async Task Overrides_SurviveAReload_AndGoWithADestinationThatLeavesTheFile()
    {
        await using var lb = await BalancerFixture.StartAsync("RoundRobin");
        await PutWeightAsync(lb, "A", "3");
        using var drain = await lb.Management.PostAsync("/api/destinations/backends/C/drain", null);
        Assert.Equal(HttpStatusCode.OK, drain.StatusCode);

        // A reload that changes the policy's spelling and B's weight in the file.
        lb.WriteConfig("roundrobin", config => HealthTestConfig.Cluster(config)["Destinations"]!["B"]!["Metadata"] = new JsonObject { ["Weight"] = "1" });
        await Poll.UntilAsync(async () => (string?)(await lb.StatusAsync())["lastReload"]?["result"] == "success", TimeSpan.FromSeconds(10), "the reload");

        Assert.Equal(new Dictionary<string, int> { ["A"] = 300, ["B"] = 100 }, await lb.CountBackendsAsync(400));
        Assert.Equal("Drained", await StateAsync(lb, "C"));
        // The canonical name, not the file's spelling.
        Assert.Equal("RoundRobin", (string)(await lb.StatusAsync())["clusters"]![0]!["policy"]!);
        Assert.Contains(await lb.MetricsAsync(), s => s.Name == "balancer_cluster_policy_info" && s.Labels["policy"] == "RoundRobin");

        // C leaves the file: its override goes; when it comes back it is in service.
        lb.WriteConfig("RoundRobin", config => HealthTestConfig.Cluster(config)["Destinations"]!.AsObject().Remove("C"));
        await Poll.UntilAsync(async () => (await ListAsync(lb)).All(d => (string)d!["id"]! != "C"), TimeSpan.FromSeconds(10), "C gone");
        lb.WriteConfig("RoundRobin");
        await Poll.UntilAsync(async () => (await ListAsync(lb)).Any(d => (string)d!["id"]! == "C"), TimeSpan.FromSeconds(10), "C back");
        Assert.Equal("Active", await StateAsync(lb, "C"));
        Assert.Equal(new Dictionary<string, int> { ["A"] = 300, ["B"] = 100, ["C"] = 100 }, await lb.CountBackendsAsync(500));
    }

    [Fact]
    public async Task Overrides_SurviveARestart_ThroughTheStateFile()
    {
        var directory = Directory.CreateTempSubdirectory("balancer-state-").FullName;
        try
        {
            var stateFile = Path.Combine(directory, "state.json");
            Action<JsonObject> withState = config => config["Balancer"]!["StateFile"] = stateFile;
            await using (var first = await BalancerFixture.StartAsync("RoundRobin", withState))
            {
                await PutWeightAsync(first, "A", "3");
                using var drain = await first.Management.PostAsync("/api/destinations/backends/B/drain", null);
                Assert.Equal(HttpStatusCode.OK, drain.StatusCode);
            }

            Assert.True(File.Exists(stateFile));
            Assert.False(File.Exists(stateFile + ".tmp"));

            await using var second = await BalancerFixture.StartAsync("RoundRobin", withState);
            Assert.Equal("Drained", await StateAsync(second, "B"));
            Assert.Equal(3, (int)(await EntryAsync(second, "A"))["runtime"]!["weightOverride"]!);
            Assert.Equal(new Dictionary<string, int> { ["A"] = 300, ["C"] = 100 }, await second.CountBackendsAsync(400));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Theory]
    [InlineData("{ not json")]
    [InlineData("")]
    [InlineData("{\"version\": 1, \"destinations\": [{\"cluster\": \"backends\", \"destination\": \"A\", \"mode\": \"Drain\", \"weight\": 0}]}")]
    public async Task CorruptStateFile_IsIgnoredWithALogLine_AndTheBalancerServes(string content)
    {
        var directory = Directory.CreateTempSubdirectory("balancer-state-").FullName;
        try
        {
            var stateFile = Path.Combine(directory, "state.json");
            await File.WriteAllTextAsync(stateFile, content);
            await using var lb = await BalancerFixture.StartAsync("RoundRobin", config => config["Balancer"]!["StateFile"] = stateFile, b => b.Logging.AddFakeLogging());

            var warning = Assert.Single(lb.App.Services.GetFakeLogCollector().GetSnapshot(), r => r.Id.Id == 7103);
            Assert.Contains(stateFile, warning.Message, StringComparison.Ordinal);
            Assert.Equal(new Dictionary<string, int> { ["A"] = 100, ["B"] = 100, ["C"] = 100 }, await lb.CountBackendsAsync(300));
            Assert.All(await ListAsync(lb), d => Assert.Equal("Active", (string)d!["runtime"]!["state"]!));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    public static TheoryData<string, string, string?, int, string> BadRequests => new()
    {
        { "POST", "/api/destinations/nope/A/drain", null, 404, "no cluster 'nope'" },
        { "POST", "/api/destinations/backends/Z/drain", null, 404, "no destination 'Z'" },
        { "PUT", "/api/destinations/nope/A/weight", "3", 404, "no cluster 'nope'" },
        { "PUT", "/api/destinations/backends/A/weight", "0", 400, "weight: '0'" },
        { "PUT", "/api/destinations/backends/A/weight", "1001", 400, "weight: '1001'" },
        { "PUT", "/api/destinations/backends/A/weight", "three", 400, "weight: 'three'" },
        { "PUT", "/api/destinations/backends/A/weight", "2.5", 400, "weight: '2.5'" },
        { "PUT", "/api/destinations/backends/A/weight", "{\"weight\": \"3\"}", 400, "number 'weight'" },
        { "PUT", "/api/destinations/backends/A/weight", "{\"weight\": 3", 400, "not valid JSON" },
        { "PUT", "/api/destinations/backends/A/weight", "", 400, "body is empty" },
        { "PUT", "/api/destinations/backends/A/weight", new string('1', 300), 413, "longer than" },
        { "GET", "/api/destinations/backends/A/drain", null, 405, "use POST" },
        { "POST", "/api/destinations/backends/A/weight", "3", 405, "use PUT, DELETE" },
        { "DELETE", "/api/destinations", null, 405, "use GET, HEAD" },
        { "POST", "/api/destinations/backends/A/reboot", null, 404, "no such resource" },
        { "POST", "/api/destinations/backends/A", null, 404, "no such resource" },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task BadInput_Gets4xxJsonNamingTheProblem_AndChangesNothing(string method, string path, string? body, int status, string error)
    {
        await using var lb = await BalancerFixture.StartAsync("RoundRobin");

        using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = body is null ? null : new StringContent(body) };
        using var response = await lb.Management.SendAsync(request);

        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var answer = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Contains(error, (string)answer["error"]!, StringComparison.Ordinal);
        Assert.All(await ListAsync(lb), d =>
        {
            Assert.Equal("Active", (string)d!["runtime"]!["state"]!);
            Assert.Null(d["runtime"]!["weightOverride"]);
        });
        Assert.Equal(new Dictionary<string, int> { ["A"] = 100, ["B"] = 100, ["C"] = 100 }, await lb.CountBackendsAsync(300));
        Assert.All((await lb.MetricsAsync()).Where(s => s.Name == "balancer_runtime_changes_total"), s => Assert.Equal(0, s.Value));
    }

    [Fact]
    public async Task WithAToken_ChangesNeedIt_AndTheLogSaysWhoMadeThem()
    {
        const string token = "0123456789abcdef-runtime-token";
        await using var lb = await BalancerFixture.StartAsync(
            "RoundRobin", config => config["Balancer"]!["Management"]!["Token"] = token, b => b.Logging.AddFakeLogging());

        using var anonymous = await lb.Management.PostAsync("/api/destinations/backends/B/drain", null);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);

        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/destinations/backends/B/drain");
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("alice:" + token)));
        using var drained = await lb.Management.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, drained.StatusCode);

        var line = Assert.Single(lb.App.Services.GetFakeLogCollector().GetSnapshot(), r => r.Id.Id == 7111);
        Assert.Contains("alice@127.0.0.1", line.Message, StringComparison.Ordinal);
        Assert.Contains("backends/B Active -> Drain", line.Message, StringComparison.Ordinal);
        Assert.Equal(new Dictionary<string, int> { ["A"] = 150, ["C"] = 150 }, await lb.CountBackendsAsync(300));
    }

    [Fact]
    public async Task Maintenance_StopsProbes_KeepsHealth_ShowsInStatusAndMetrics_EnableStartsSlowStart()
    {
        var probes = new ConcurrentDictionary<string, int>();
        await using var lb = await BalancerFixture.StartAsync(
            "RoundRobin",
            // On B alone: a destination whose first probe failed under load would ramp from start-up too.
            HealthTestConfig.ActiveAndPassive(cluster: c => c["Destinations"]!["B"]!["Metadata"] = new JsonObject { ["SlowStart"] = "01:00:00" }),
            configureBackends: b => b.Services.AddSingleton<IStartupFilter>(new ProbeCounter(probes)));
        await HealthTestConfig.WaitAllUpAsync(lb);

        using var maintenance = await lb.Management.PostAsync("/api/destinations/backends/B/maintenance", null);
        Assert.Equal(HttpStatusCode.OK, maintenance.StatusCode);
        var bAtStart = probes.GetValueOrDefault("B");
        var aAtStart = probes.GetValueOrDefault("A");
        // Three more probe rounds reach A; B gets at most the one that may have been on its way.
        await Poll.UntilAsync(() => probes.GetValueOrDefault("A") >= aAtStart + 3, TimeSpan.FromSeconds(10), "three probe rounds");
        Assert.InRange(probes.GetValueOrDefault("B"), bAtStart, bAtStart + 1);

        Assert.Equal("Maintenance", await StateAsync(lb, "B"));
        Assert.Equal("Up", await HealthTestConfig.HealthAsync(lb, "B"));
        var metrics = await lb.MetricsAsync();
        Assert.Equal(3, metrics.Single(s => s.Name == "balancer_destination_state" && s.Labels["destination"] == "B").Value);
        Assert.Equal(0, metrics.Single(s => s.Name == "balancer_destination_state" && s.Labels["destination"] == "A").Value);
        Assert.Equal(0, metrics.Single(s => s.Name == "balancer_destination_up" && s.Labels["destination"] == "B").Value);
        Assert.Equal(new Dictionary<string, int> { ["A"] = 50, ["C"] = 50 }, await lb.CountBackendsAsync(100));

        using var enable = await lb.Management.PostAsync("/api/destinations/backends/B/enable", null);
        Assert.Equal(HttpStatusCode.OK, enable.StatusCode);
        var b = (await lb.StatusAsync())["clusters"]![0]!["destinations"]!.AsArray().Single(d => (string)d!["id"]! == "B")!;
        Assert.Equal("Active", (string)b["state"]!);
        Assert.Equal(0.1, (double)b["slowStart"]!["fraction"]!);
        Assert.Equal(0.1, (double)b["effectiveWeight"]!);
        // A tenth of the weight: 20:20:2 in twentieths, 42 requests a period.
        Assert.Equal(new Dictionary<string, int> { ["A"] = 200, ["B"] = 20, ["C"] = 200 }, await lb.CountBackendsAsync(420));
    }

    private static async Task PutWeightAsync(BalancerFixture lb, string destination, string weight)
    {
        using var put = await lb.Management.PutAsync($"/api/destinations/backends/{destination}/weight", new StringContent(weight));
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
    }

    private static async Task<JsonArray> ListAsync(BalancerFixture lb) =>
        JsonNode.Parse(await lb.Management.GetStringAsync("/api/destinations"))!["destinations"]!.AsArray();

    private static async Task<JsonNode> EntryAsync(BalancerFixture lb, string destination) =>
        (await ListAsync(lb)).Single(d => (string)d!["id"]! == destination)!;

    private static async Task<string> StateAsync(BalancerFixture lb, string destination)
    {
        var fromApi = (string)(await EntryAsync(lb, destination))["runtime"]!["state"]!;
        var status = (await lb.StatusAsync())["clusters"]![0]!["destinations"]!.AsArray().Single(d => (string)d!["id"]! == destination)!;
        Assert.Equal(fromApi, (string)status["state"]!);
        return fromApi;
    }

    private static async Task<int> InFlightAsync(BalancerFixture lb, string destination) =>
        (int)(await EntryAsync(lb, destination))["inFlight"]!;

    /// <summary>Counts the health probes each backend receives.</summary>
    private sealed class ProbeCounter(ConcurrentDictionary<string, int> counts) : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use((context, nextMiddleware) =>
            {
                if (context.Request.Path == "/health")
                {
                    var name = context.RequestServices.GetRequiredService<SampleBackend.BackendState>().Name;
                    counts.AddOrUpdate(name, 1, (_, n) => n + 1);
                }

                return nextMiddleware(context);
            });
            next(app);
        };
    }
}
