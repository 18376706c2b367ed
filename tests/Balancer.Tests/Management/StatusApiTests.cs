using System.Text.Json.Nodes;
using Balancer.Tests.Health;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;

namespace Balancer.Tests.Management;

[Collection(IntegrationCollection.Name)]
public sealed class StatusApiTests
{
    private static readonly string[] DestinationFields =
        ["id", "address", "health", "weight", "requests", "requestsPerSecond", "inFlight", "latencyP50Ms", "latencyP99Ms", "healthChange",
         "requestRateHistory", "probes", "passiveEvents", "flapsLast10Minutes"];

    private static readonly string[] ProbeFields = ["time", "outcome", "latencyMs", "statusCode", "error"];

    [Fact]
    public async Task Status_HasEveryDocumentedField_ForClustersDestinationsAndReload()
    {
        await using var lb = await BalancerFixture.StartAsync("LeastConnections", HealthTestConfig.ActiveAndPassive());
        await HealthTestConfig.WaitAllUpAsync(lb);

        var status = (await lb.StatusAsync()).AsObject();

        Assert.True(status.ContainsKey("clusters"));
        Assert.True(status.ContainsKey("lastReload"));
        Assert.Null(status["lastReload"]);
        var cluster = status["clusters"]!.AsArray().Single()!.AsObject();
        Assert.Equal("backends", (string)cluster["id"]!);
        Assert.Equal("LeastConnections", (string)cluster["policy"]!);
        var destinations = cluster["destinations"]!.AsArray();
        Assert.Equal(["A", "B", "C"], destinations.Select(d => (string)d!["id"]!));
        foreach (var destination in destinations.Select(d => d!.AsObject()))
        {
            Assert.All(DestinationFields, field => Assert.True(destination.ContainsKey(field), $"{destination["id"]} lacks '{field}': {destination.ToJsonString()}"));
            Assert.Equal("Up", (string)destination["health"]!);
            Assert.Equal(0, (long)destination["requests"]!);
            Assert.Equal(0, (double)destination["requestsPerSecond"]!);
            Assert.Equal(0, (int)destination["inFlight"]!);
            Assert.Null(destination["latencyP50Ms"]);
            Assert.Null(destination["latencyP99Ms"]);
            // The first good probe moved it from Unknown to Up; that is its last change.
            var change = destination["healthChange"]!;
            Assert.Equal("Unknown", (string)change["from"]!);
            Assert.Equal("Up", (string)change["to"]!);
            Assert.False(string.IsNullOrWhiteSpace((string?)change["reason"]));
            Assert.InRange(DateTimeOffset.Parse((string)change["time"]!, System.Globalization.CultureInfo.InvariantCulture), DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow);
            Assert.Equal(new long[60], destination["requestRateHistory"]!.AsArray().Select(n => (long)n!));
            var probe = destination["probes"]!.AsArray()[0]!.AsObject();
            Assert.All(ProbeFields, field => Assert.True(probe.ContainsKey(field), $"a probe lacks '{field}': {probe.ToJsonString()}"));
            Assert.Empty(destination["passiveEvents"]!.AsArray());
            Assert.Equal(0, (int)destination["flapsLast10Minutes"]!);
        }
    }

    [Fact]
    public async Task Status_1000Destinations_FilteredByStateAndName_PagedWithOffsetAndLimit_BadQueryIs400()
    {
        await using var lb = await LargeCluster.StartAsync();
        await LargeCluster.WaitForDeadDownAsync(lb);

        async Task<(string[] Ids, int Matching, int Count)> QueryAsync(string query)
        {
            var cluster = JsonNode.Parse(await lb.Management.GetStringAsync("/status" + query))!["clusters"]![0]!;
            return ([.. cluster["destinations"]!.AsArray().Select(d => (string)d!["id"]!)], (int)cluster["matching"]!, (int)cluster["destinationCount"]!);
        }

        var dead = await QueryAsync("?state=Down");
        Assert.Equal(LargeCluster.DeadIds, dead.Ids);
        Assert.Equal((10, 1000), (dead.Matching, dead.Count));
        var down = await QueryAsync("?state=down&name=D01");
        Assert.Equal(["d0107"], down.Ids);
        Assert.Equal(1, down.Matching);
        var named = await QueryAsync("?name=d00");
        Assert.Equal(100, named.Matching);
        Assert.Equal(Enumerable.Range(0, 100).Select(i => $"d{i:0000}"), named.Ids);
        var page = await QueryAsync("?state=Up&offset=100&limit=50");
        Assert.Equal(990, page.Matching);
        Assert.Equal(50, page.Ids.Length);
        Assert.Equal("d0101", page.Ids[0]);
        Assert.All(page.Ids, id => Assert.DoesNotContain(id, LargeCluster.DeadIds));
        Assert.Equal(1000, (await QueryAsync("")).Ids.Length);
        Assert.Empty((await QueryAsync("?state=Maintenance")).Ids);

        foreach (var (query, key) in new[] { ("?state=Sideways", "state"), ("?limit=0", "limit"), ("?offset=-1", "offset"), ("?limit=ten", "limit") })
        {
            using var response = await lb.Management.GetAsync("/status" + query);
            Assert.Equal(System.Net.HttpStatusCode.BadRequest, response.StatusCode);
            var error = (string)JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!;
            Assert.StartsWith(key + ":", error, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Status_KilledThenRestartedBackend_ShowsItsFailedProbesWithTheError_AndTwoFlaps()
    {
        await using var lb = await BalancerFixture.StartAsync("RoundRobin", HealthTestConfig.ActiveAndPassive());
        await HealthTestConfig.WaitAllUpAsync(lb);
        var killedAt = DateTimeOffset.UtcNow;

        await lb.Backend("B").KillAsync();
        await HealthTestConfig.WaitForHealthAsync(lb, "B", "Down", TimeSpan.FromSeconds(10));
        // Probes run every second: wait for two sent once B was surely gone, then bring B back.
        var gone = DateTimeOffset.UtcNow;
        await Poll.UntilAsync(async () => Probes(await DestinationAsync(lb, "B")).Count(p => p.Time > gone) >= 2, TimeSpan.FromSeconds(10), "two probes of B after it was seen Down");
        await lb.Backend("B").RestartAsync();
        await HealthTestConfig.WaitForHealthAsync(lb, "B", "Up", TimeSpan.FromSeconds(10));

        var b = await DestinationAsync(lb, "B");
        var probes = Probes(b);
        Assert.InRange(probes.Count, 4, 20);
        // Newest first: the probe that brought it back, the failures while it was gone, the successes before.
        Assert.Equal(("Success", (int?)200, (string?)null), (probes[0].Outcome, probes[0].StatusCode, probes[0].Error));
        var failed = probes.Where(p => p.Outcome == "Failure").ToList();
        Assert.True(failed.Count(p => p.Time > gone) >= 2, string.Join(" | ", probes));
        Assert.All(failed, p =>
        {
            // A probe under way at the very moment of the kill may have had its connection cut instead.
            Assert.Equal(p.Time > gone ? "refused" : p.Error is "reset" ? "reset" : "refused", p.Error);
            Assert.Null(p.StatusCode);
            Assert.InRange(p.Time, killedAt, DateTimeOffset.UtcNow);
            Assert.InRange(p.LatencyMs!.Value, 0, 1000);
        });
        var lastBeforeKill = probes.First(p => p.Time < killedAt);
        Assert.Equal(("Success", (int?)200), (lastBeforeKill.Outcome, lastBeforeKill.StatusCode));
        Assert.Equal(2, (int)b["flapsLast10Minutes"]!);
        Assert.Equal(0, (int)(await DestinationAsync(lb, "A"))["flapsLast10Minutes"]!);
        Assert.Equal(0, (int)(await DestinationAsync(lb, "C"))["flapsLast10Minutes"]!);
    }

    [Fact]
    public async Task Status_RequestToAKilledBackend_ShowsItsEjectionAndReturn_WithTimeAndReason()
    {
        await using var lb = await BalancerFixture.StartAsync("RoundRobin", c => HealthTestConfig.Cluster(c)["HealthCheck"] = new JsonObject
        {
            ["Passive"] = new JsonObject { ["Enabled"] = true, ["Policy"] = "FirstFailure", ["ReactivationPeriod"] = "00:00:02" },
        });
        var killedAt = DateTimeOffset.UtcNow;
        await lb.Backend("B").KillAsync();

        // Round robin sends one of the first three requests to B: refused, retried elsewhere, B ejected.
        Assert.Equal(3, (await lb.CountBackendsAsync(3)).Values.Sum());
        await Poll.UntilAsync(async () => (await DestinationAsync(lb, "B"))["passiveEvents"]!.AsArray().Count == 2, TimeSpan.FromSeconds(10), "B's ejection and return");

        var events = (await DestinationAsync(lb, "B"))["passiveEvents"]!.AsArray()
            .Select(e => (Time: DateTimeOffset.Parse((string)e!["time"]!, System.Globalization.CultureInfo.InvariantCulture), Kind: (string)e["kind"]!, Reason: (string)e["reason"]!))
            .ToList();
        Assert.Equal(
            [("Returned", "passive failure expired after 00:00:02"), ("Ejected", "request failed: refused (out for up to 00:00:02)")],
            events.Select(e => (e.Kind, e.Reason)));
        Assert.InRange(events[1].Time, killedAt, events[0].Time);
        Assert.InRange(events[0].Time - events[1].Time, TimeSpan.FromSeconds(1.9), TimeSpan.FromSeconds(3));
        // Never Up (no active checks): Unknown -> Down -> Unknown is no flap.
        Assert.Equal(0, (int)(await DestinationAsync(lb, "B"))["flapsLast10Minutes"]!);
        Assert.Empty((await DestinationAsync(lb, "B"))["probes"]!.AsArray());
        Assert.Empty((await DestinationAsync(lb, "A"))["passiveEvents"]!.AsArray());
    }

    private static async Task<JsonNode> DestinationAsync(BalancerFixture lb, string id) =>
        (await lb.StatusAsync())["clusters"]![0]!["destinations"]!.AsArray().Single(d => (string)d!["id"]! == id)!;

    private static List<(DateTimeOffset Time, string Outcome, double? LatencyMs, int? StatusCode, string? Error)> Probes(JsonNode destination) =>
        [.. destination["probes"]!.AsArray().Select(p => (
            DateTimeOffset.Parse((string)p!["time"]!, System.Globalization.CultureInfo.InvariantCulture),
            (string)p["outcome"]!,
            (double?)p["latencyMs"],
            (int?)p["statusCode"],
            (string?)p["error"]))];

    [Fact]
    public async Task Status_After300Requests_CountsEachDestinationExactly_ProbesExcluded()
    {
        // Probes every second run alongside: they must not be counted as proxied requests.
        await using var lb = await BalancerFixture.StartAsync("RoundRobin", HealthTestConfig.ActiveAndPassive());
        await HealthTestConfig.WaitAllUpAsync(lb);

        for (var i = 0; i < 300; i++)
        {
            await lb.GetBackendAsync();
        }

        var destinations = (await lb.StatusAsync())["clusters"]![0]!["destinations"]!.AsArray();
        Assert.All(destinations, d =>
        {
            Assert.Equal(100, (long)d!["requests"]!);
            Assert.Equal(0, (int)d["inFlight"]!);
            var p50 = (double)d["latencyP50Ms"]!;
            var p99 = (double)d["latencyP99Ms"]!;
            Assert.True(p50 > 0 && p50 <= p99, $"{d["id"]}: p50 {p50} ms, p99 {p99} ms");
        });

        // The rate counts whole seconds only: once the second(s) the 300 requests fell in are over, each
        // destination's 100 requests within the last 10 s read as exactly 10 per second.
        await Poll.UntilAsync(
            async () => (await lb.StatusAsync())["clusters"]![0]!["destinations"]!.AsArray().All(d => (double)d!["requestsPerSecond"]! == 10.0),
            TimeSpan.FromSeconds(5),
            "10 requests per second on each destination");
    }

    [Fact]
    public async Task Status_KilledBackend_TurnsDownWithTimeAndReason_OthersStayUp()
    {
        await using var lb = await BalancerFixture.StartAsync("RoundRobin", HealthTestConfig.ActiveAndPassive());
        await HealthTestConfig.WaitAllUpAsync(lb);
        var killedAt = DateTimeOffset.UtcNow;

        await lb.Backend("B").KillAsync();
        await HealthTestConfig.WaitForHealthAsync(lb, "B", "Down", TimeSpan.FromSeconds(10));

        var destinations = (await lb.StatusAsync())["clusters"]![0]!["destinations"]!.AsArray();
        var b = destinations.Single(d => (string)d!["id"]! == "B")!;
        var change = b["healthChange"]!;
        Assert.Equal("Up", (string)change["from"]!);
        Assert.Equal("Down", (string)change["to"]!);
        Assert.False(string.IsNullOrWhiteSpace((string?)change["reason"]));
        Assert.InRange(DateTimeOffset.Parse((string)change["time"]!, System.Globalization.CultureInfo.InvariantCulture), killedAt, DateTimeOffset.UtcNow);
        Assert.Equal(["Up", "Up"], destinations.Where(d => (string)d!["id"]! != "B").Select(d => (string)d!["health"]!));
    }

    [Fact]
    public async Task Status_RejectedReload_ReportsFailureTimeAndError_SuccessClearsIt()
    {
        await using var lb = await BalancerFixture.StartAsync("RoundRobin");
        var before = DateTimeOffset.UtcNow;

        lb.WriteConfig("NoSuchPolicy");
        await Poll.UntilAsync(async () => (string?)(await lb.StatusAsync())["lastReload"]?["result"] == "failure", TimeSpan.FromSeconds(10), "the rejected reload in /status");

        var reload = (await lb.StatusAsync())["lastReload"]!;
        Assert.Contains("NoSuchPolicy", (string)reload["error"]!, StringComparison.Ordinal);
        Assert.InRange(DateTimeOffset.Parse((string)reload["time"]!, System.Globalization.CultureInfo.InvariantCulture), before, DateTimeOffset.UtcNow);

        lb.WriteConfig("IpHash");
        await Poll.UntilAsync(async () => (string?)(await lb.StatusAsync())["lastReload"]?["result"] == "success", TimeSpan.FromSeconds(10), "the accepted reload in /status");
        var status = await lb.StatusAsync();
        Assert.Null(status["lastReload"]!["error"]);
        Assert.Equal("IpHash", (string)status["clusters"]![0]!["policy"]!);
    }
}
