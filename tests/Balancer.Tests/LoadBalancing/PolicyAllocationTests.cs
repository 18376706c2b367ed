using System.Net;
using Balancer.Tests.Infrastructure;

namespace Balancer.Tests.LoadBalancing;

/// <summary>
/// A pick runs on every proxied request: once the cluster's set is cached, it must not allocate at all.
/// </summary>
[Trait("Category", "Unit")]
public sealed class PolicyAllocationTests
{
    [Theory]
    [InlineData("RoundRobin")]
    [InlineData("LeastConnections")]
    [InlineData("IpHash")]
    public void Pick_AfterWarmUp_AllocatesNothing(string name)
    {
        var (policy, _) = Destinations.Policy(name);
        var destinations = Destinations.Make(("A", 5), ("B", 3), ("C", 2));
        var cluster = Destinations.Cluster(destinations);
        var context = new DefaultHttpContext { Connection = { RemoteIpAddress = IPAddress.Parse("192.0.2.7") } };
        var picked = 0;
        for (var i = 0; i < 1_000; i++)
        {
            picked += policy.PickDestination(context, cluster, destinations) is null ? 0 : 1;
        }

        var allocated = Allocations.Fewest(() =>
        {
            for (var i = 0; i < 10_000; i++)
            {
                picked += policy.PickDestination(context, cluster, destinations) is null ? 0 : 1;
            }
        });

        Assert.Equal(31_000, picked);
        Assert.Equal(0, allocated);
    }
}
