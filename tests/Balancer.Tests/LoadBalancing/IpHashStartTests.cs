using System.Text.Json.Nodes;
using Balancer.LoadBalancing;
using Balancer.Tests.Health;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.LoadBalancing;

namespace Balancer.Tests.LoadBalancing;

/// <summary>An IpHash cluster large enough for a lookup table has it before its first request, at start-up and after a switch to IpHash.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class IpHashStartTests
{
    [Fact]
    public async Task LargeIpHashCluster_TableBuiltWhenTheConfigIsApplied_BeforeAnyRequest()
    {
        await using var lb = await BalancerFixture.StartAsync("IpHash", Hundred);
        var policy = lb.App.Services.GetServices<ILoadBalancingPolicy>().OfType<IpHashPolicy>().Single();
        var cluster = lb.App.Services.GetRequiredService<IProxyStateLookup>().GetClusters().Single();
        var table = policy.Clusters.CachedTable(cluster);
        Assert.NotNull(table);
        Assert.Equal(100, table.Destinations.Length);
        Assert.Equal(1, policy.Clusters.TableBuilds(cluster));

        // Switched from RoundRobin by a reload: the table is there once /status shows the policy.
        lb.WriteConfig("RoundRobin", Hundred);
        await Poll.UntilAsync(async () => (string?)(await lb.StatusAsync())["clusters"]![0]!["policy"] == "RoundRobin", TimeSpan.FromSeconds(20), "RoundRobin in force");
        lb.WriteConfig("IpHash", config =>
        {
            Hundred(config);
            HealthTestConfig.Cluster(config)["Destinations"]!.AsObject().Remove("d099");
        });
        await Poll.UntilAsync(
            () => Task.FromResult(policy.Clusters.CachedTable(cluster)?.Destinations.Length == 99),
            TimeSpan.FromSeconds(20),
            "a table of the 99 destinations with no request sent");
        // One table per config of the cluster: the first, and the one of the 99; probes and health changes build none.
        Assert.Equal(2, policy.Clusters.TableBuilds(cluster));
    }

    private static void Hundred(JsonObject config)
    {
        var cluster = HealthTestConfig.Cluster(config);
        var backends = cluster["Destinations"]!.AsObject().Select(d => (string)d.Value!["Address"]!).ToArray();
        var destinations = new JsonObject();
        for (var i = 0; i < 100; i++)
        {
            destinations[$"d{i:000}"] = new JsonObject { ["Address"] = backends[i % backends.Length] };
        }

        cluster["Destinations"] = destinations;
    }
}
