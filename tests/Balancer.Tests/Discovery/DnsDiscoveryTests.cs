using System.Text.Json.Nodes;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;

namespace Balancer.Tests.Discovery;

/// <summary>
/// A destination given by a DNS name, against a real DNS server (dnsmasq) whose records change while the
/// balancer runs: every address of the name is a destination of its own, and the set follows the records
/// without a config edit.
/// </summary>
[Collection(IntegrationCollection.Name)]
public sealed class DnsDiscoveryTests
{
    private const string Name = "backends.lb.test";

    [Fact]
    public async Task OneName_EachAddressADestination_RecordsAddedAndRemoved_TrafficFollowsWithoutAConfigEdit()
    {
        // Three backends on one port at three loopback addresses, as three hosts behind one name would be.
        await using var x = await BackendHost.StartAsync("X", address: "127.0.0.2");
        var port = x.Address.Port;
        await using var y = await BackendHost.StartAsync("Y", port, address: "127.0.0.3");
        await using var z = await BackendHost.StartAsync("Z", port, address: "127.0.0.4");
        await using var dns = await DnsServer.StartAsync(Name, "127.0.0.2", "127.0.0.3");
        await using var lb = await BalancerFixture.StartAsync(edit: config =>
        {
            config["Balancer"]!["Discovery"] = new JsonObject { ["NameServers"] = new JsonArray(dns.NameServer), ["RefreshPeriod"] = "00:00:01" };
            var cluster = config["ReverseProxy"]!["Clusters"]!["backends"]!;
            cluster["Destinations"] = new JsonObject
            {
                ["web"] = new JsonObject { ["Address"] = $"http://{Name}:{port}/", ["Metadata"] = new JsonObject { ["Discovery"] = "Dns" } },
            };
            cluster["HealthCheck"] = new JsonObject
            {
                ["Active"] = new JsonObject { ["Enabled"] = true, ["Interval"] = "00:00:01", ["Timeout"] = "00:00:01", ["Policy"] = "ConsecutiveFailures", ["Path"] = "/health" },
            };
        });

        Assert.Equal([$"web[127.0.0.2:{port}]", $"web[127.0.0.3:{port}]"], await DestinationsAsync(lb));
        Assert.Equal(new Dictionary<string, int> { ["X"] = 15, ["Y"] = 15 }, await lb.CountBackendsAsync(30));
        // Each address is probed and tracked on its own.
        await Poll.UntilAsync(async () => (await HealthAsync(lb)).All(h => h == "Up"), TimeSpan.FromSeconds(15), "both addresses probed Up");

        await dns.SetAsync(Name, "127.0.0.2", "127.0.0.3", "127.0.0.4");
        await Poll.UntilAsync(async () => (await DestinationsAsync(lb)).Count == 3, TimeSpan.FromSeconds(15), "the third address to become a destination");
        Assert.Equal([$"web[127.0.0.2:{port}]", $"web[127.0.0.3:{port}]", $"web[127.0.0.4:{port}]"], await DestinationsAsync(lb));
        Assert.Equal(new Dictionary<string, int> { ["X"] = 10, ["Y"] = 10, ["Z"] = 10 }, await lb.CountBackendsAsync(30));

        await dns.SetAsync(Name, "127.0.0.3", "127.0.0.4");
        await Poll.UntilAsync(async () => (await DestinationsAsync(lb)).Count == 2, TimeSpan.FromSeconds(15), "the removed address to leave");
        Assert.Equal([$"web[127.0.0.3:{port}]", $"web[127.0.0.4:{port}]"], await DestinationsAsync(lb));
        Assert.Equal(new Dictionary<string, int> { ["Y"] = 15, ["Z"] = 15 }, await lb.CountBackendsAsync(30));
    }

    private static async Task<List<string>> DestinationsAsync(BalancerFixture lb) =>
        [.. (await Cluster(lb)).Select(d => (string)d!["id"]!).Order(StringComparer.Ordinal)];

    private static async Task<List<string>> HealthAsync(BalancerFixture lb) =>
        [.. (await Cluster(lb)).Select(d => (string)d!["health"]!)];

    private static async Task<JsonArray> Cluster(BalancerFixture lb) =>
        (await lb.StatusAsync())["clusters"]!.AsArray().Single(c => (string)c!["id"]! == "backends")!["destinations"]!.AsArray();
}
