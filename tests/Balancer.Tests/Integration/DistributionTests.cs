using System.Net;
using Balancer.Tests.Infrastructure;

namespace Balancer.Tests.Integration;

[Collection(FunctionalCollection.Name)]
public sealed class DistributionTests
{
    [Fact]
    public async Task RoundRobin_999Requests_Splits333_333_333()
    {
        await using var lb = await BalancerFixture.StartAsync("RoundRobin");

        var counts = new Dictionary<string, int>();
        for (var i = 0; i < 999; i++)
        {
            var backend = await lb.GetBackendAsync();
            counts[backend] = counts.GetValueOrDefault(backend) + 1;
        }

        Assert.Equal(new Dictionary<string, int> { ["A"] = 333, ["B"] = 333, ["C"] = 333 }, counts);
    }

    [Fact]
    public async Task RoundRobin_Weights532_1000Requests_Splits500_300_200()
    {
        await using var lb = await BalancerFixture.StartAsync("RoundRobin", config =>
        {
            var destinations = config["ReverseProxy"]!["Clusters"]!["backends"]!["Destinations"]!;
            destinations["A"]!["Metadata"] = new System.Text.Json.Nodes.JsonObject { ["Weight"] = "5" };
            destinations["B"]!["Metadata"] = new System.Text.Json.Nodes.JsonObject { ["Weight"] = "3" };
            destinations["C"]!["Metadata"] = new System.Text.Json.Nodes.JsonObject { ["Weight"] = "2" };
        });

        var counts = new Dictionary<string, int>();
        for (var i = 0; i < 1000; i++)
        {
            var backend = await lb.GetBackendAsync();
            counts[backend] = counts.GetValueOrDefault(backend) + 1;
        }

        Assert.Equal(new Dictionary<string, int> { ["A"] = 500, ["B"] = 300, ["C"] = 200 }, counts);
    }

    [Fact]
    public async Task IpHash_60ClientAddresses_EachSticksToOneBackend_AllThreeUsed()
    {
        await using var lb = await BalancerFixture.StartAsync("IpHash");

        var owners = new Dictionary<string, string>();
        for (var host = 1; host <= 60; host++)
        {
            var source = IPAddress.Parse($"127.0.1.{host}");
            using var client = new SourceAddressClient(source);
            var seen = new HashSet<string>();
            for (var i = 0; i < 5; i++)
            {
                seen.Add(await client.GetBackendAsync(lb.ProxyAddress));
            }

            Assert.True(seen.Count == 1, $"{source} reached {string.Join(", ", seen)}");
            owners[source.ToString()] = seen.Single();
        }

        Assert.Equal(["A", "B", "C"], owners.Values.Distinct().Order());
    }

    [Fact]
    public async Task IpHash_TwoBalancerReplicas_MapEveryAddressTheSameWay()
    {
        await using var first = await BalancerFixture.StartAsync("IpHash");
        await using var second = await BalancerFixture.StartAsync("IpHash");
        // The replicas front different backend processes; what must agree is the destination id.
        for (var host = 1; host <= 30; host++)
        {
            using var client = new SourceAddressClient(IPAddress.Parse($"127.0.2.{host}"));
            Assert.Equal(await client.GetBackendAsync(first.ProxyAddress), await client.GetBackendAsync(second.ProxyAddress));
        }
    }
}
