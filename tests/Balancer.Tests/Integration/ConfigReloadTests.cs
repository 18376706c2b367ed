using System.Net;
using Balancer.Tests.Infrastructure;

namespace Balancer.Tests.Integration;

[Collection(IntegrationCollection.Name)]
public sealed class ConfigReloadTests
{
    [Fact]
    public async Task PolicySwitch_RoundRobinToIpHashToLeastConnections_UnderTraffic_NoRestartNoFailure()
    {
        await using var lb = await BalancerFixture.StartAsync("RoundRobin");
        // RoundRobin: sequential requests rotate exactly (measured before the background traffic starts,
        // which would share the rotation).
        Assert.Equal(new[] { 100, 100, 100 }, await lb.CountsAsync(300));
        using var traffic = new SteadyTraffic(lb.Client, clients: 4);

        lb.WriteConfig("IpHash");
        await WaitForPolicyAsync(lb, "IpHash");
        // IpHash: every request from this one client address lands on the same backend.
        Assert.Equal(new[] { 300 }, await lb.CountsAsync(300));

        lb.WriteConfig("LeastConnections");
        await WaitForPolicyAsync(lb, "LeastConnections");
        var result = await traffic.StopAsync();
        Assert.True(result.Succeeded > 0);
        Assert.True(result.Failed == 0, string.Join("; ", result.Failures));

        // LeastConnections: while A holds a slow request, idle B and C take every new one.
        lb.Backend("A").State.DelayMs = 2_000;
        using var held = new HttpClient { BaseAddress = lb.ProxyAddress };
        var slow = new List<Task<HttpResponseMessage>>();
        await Poll.UntilAsync(async () =>
        {
            slow.Add(held.GetAsync("/"));
            return await InFlightAsync(lb, "A") >= 1;
        }, TimeSpan.FromSeconds(5), "a request in flight on A");
        var distribution = await lb.CountBackendsAsync(60);
        Assert.False(distribution.ContainsKey("A"), $"A got {distribution.GetValueOrDefault("A")} requests while busy");
        Assert.Equal(60, distribution.GetValueOrDefault("B") + distribution.GetValueOrDefault("C"));
        lb.Backend("A").State.DelayMs = 0;
        foreach (var response in await Task.WhenAll(slow))
        {
            response.Dispose();
        }

        lb.WriteConfig("RoundRobin");
        await WaitForPolicyAsync(lb, "RoundRobin");
        Assert.Equal(new[] { 100, 100, 100 }, await lb.CountsAsync(300));
    }

    [Fact]
    public async Task WeightEdit_Reload_RoundRobinFollowsTheNewWeightsExactly()
    {
        await using var lb = await BalancerFixture.StartAsync("RoundRobin");
        Assert.Equal(new Dictionary<string, int> { ["A"] = 100, ["B"] = 100, ["C"] = 100 }, await lb.CountBackendsAsync(300));

        lb.WriteConfig("RoundRobin", config =>
        {
            var destinations = config["ReverseProxy"]!["Clusters"]!["backends"]!["Destinations"]!;
            destinations["A"]!["Metadata"] = new System.Text.Json.Nodes.JsonObject { ["Weight"] = "5" };
            destinations["B"]!["Metadata"] = new System.Text.Json.Nodes.JsonObject { ["Weight"] = "3" };
            destinations["C"]!["Metadata"] = new System.Text.Json.Nodes.JsonObject { ["Weight"] = "2" };
        });
        await Poll.UntilAsync(
            async () => (int?)(await lb.StatusAsync())["clusters"]![0]!["destinations"]!.AsArray().Single(d => (string)d!["id"]! == "A")!["weight"] == 5,
            TimeSpan.FromSeconds(10),
            "A's weight 5 in /status");

        // Whole periods of the 5:3:2 schedule (10 picks), wherever the rotation stood: exact shares.
        Assert.Equal(new Dictionary<string, int> { ["A"] = 500, ["B"] = 300, ["C"] = 200 }, await lb.CountBackendsAsync(1000));
    }

    private static async Task<int> InFlightAsync(BalancerFixture lb, string destination)
    {
        var destinations = (await lb.StatusAsync())["clusters"]![0]!["destinations"]!.AsArray();
        return (int)destinations.Single(d => (string)d!["id"]! == destination)!["inFlight"]!;
    }

    [Fact]
    public async Task InvalidReload_IsRejected_LastGoodConfigKeepsServing()
    {
        await using var lb = await BalancerFixture.StartAsync("RoundRobin");
        Assert.Equal(new[] { 100, 100, 100 }, await lb.CountsAsync(300));

        lb.WriteConfig("NoSuchPolicy");
        await Poll.UntilAsync(async () => (await lb.StatusAsync())["lastReload"]?["result"]?.GetValue<string>() == "failure", TimeSpan.FromSeconds(5), "the rejected reload");

        var status = await lb.StatusAsync();
        Assert.Contains("ReverseProxy:Clusters:backends:LoadBalancingPolicy", status["lastReload"]!["error"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("RoundRobin", status["clusters"]![0]!["policy"]!.GetValue<string>());
        Assert.Equal(new[] { 100, 100, 100 }, await lb.CountsAsync(300));
    }

    [Fact]
    public async Task HalfWrittenFile_DoesNotFailRequests_AndCompletedFileApplies()
    {
        await using var lb = await BalancerFixture.StartAsync("RoundRobin");
        using var traffic = new SteadyTraffic(lb.Client, clients: 2);

        // An editor that truncates and then writes in two steps, in place.
        var full = lb.Config("IpHash").ToJsonString();
        await File.WriteAllTextAsync(lb.ConfigPath, full[..(full.Length / 2)]);
        await File.WriteAllTextAsync(lb.ConfigPath, full);
        await WaitForPolicyAsync(lb, "IpHash");

        var result = await traffic.StopAsync();
        Assert.Equal(0, result.Failed);
    }

    [Fact]
    public async Task HalfWrittenFile_ReadBeforeTheEditorFinishes_IsRejected_NoRequestFails_CompletedFileApplies()
    {
        await using var lb = await BalancerFixture.StartAsync("RoundRobin");
        using var traffic = new SteadyTraffic(lb.Client, clients: 2);

        // The editor's first step stays long enough to be read: it does not parse, so it is rejected.
        var full = lb.Config("IpHash").ToJsonString();
        await File.WriteAllTextAsync(lb.ConfigPath, full[..(full.Length / 2)]);
        await Poll.UntilAsync(async () => (await lb.StatusAsync())["lastReload"]?["result"]?.GetValue<string>() == "failure", TimeSpan.FromSeconds(5), "the half file to be read and rejected");
        Assert.Equal("RoundRobin", (await lb.StatusAsync())["clusters"]![0]!["policy"]!.GetValue<string>());
        Assert.Contains("not valid JSON", (await lb.StatusAsync())["lastReload"]!["error"]!.GetValue<string>(), StringComparison.Ordinal);

        await File.WriteAllTextAsync(lb.ConfigPath, full);
        await WaitForPolicyAsync(lb, "IpHash");
        // The new policy shows as soon as YARP has applied the file; the reload is recorded as a success just after.
        await Poll.UntilAsync(async () => (await lb.StatusAsync())["lastReload"]?["result"]?.GetValue<string>() == "success", TimeSpan.FromSeconds(2), "the completed file's reload recorded");

        var result = await traffic.StopAsync();
        Assert.True(result.Succeeded > 0);
        Assert.True(result.Failed == 0, string.Join("; ", result.Failures));
    }

    private static async Task WaitForPolicyAsync(BalancerFixture lb, string policy) =>
        await Poll.UntilAsync(async () => (await lb.StatusAsync())["clusters"]![0]!["policy"]!.GetValue<string>() == policy, TimeSpan.FromSeconds(2), $"policy {policy} in force");
}
