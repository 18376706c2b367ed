using System.Text.Json.Nodes;
using Balancer.Tests.Health;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;

namespace Balancer.Tests.Management;

[Collection(IntegrationCollection.Name)]
public sealed class StatusApiTests
{
    private static readonly string[] DestinationFields =
        ["id", "address", "health", "weight", "requests", "requestsPerSecond", "inFlight", "latencyP50Ms", "latencyP99Ms", "healthChange"];

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
        }
    }

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
