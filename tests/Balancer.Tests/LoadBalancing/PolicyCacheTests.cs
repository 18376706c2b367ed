using System.Net;
using Yarp.ReverseProxy.Model;

namespace Balancer.Tests.LoadBalancing;

/// <summary>
/// What a retry does to the policies' per-cluster cache: the retry middleware hands a policy the destinations
/// not tried yet, a list of its own; the cached set of the cluster must survive it untouched.
/// </summary>
[Trait("Category", "Unit")]
public sealed class PolicyCacheTests
{
    [Theory]
    [InlineData("RoundRobin")]
    [InlineData("LeastConnections")]
    [InlineData("IpHash")]
    public void RetrySubset_PicksOnlyFromTheSubset_AndLeavesTheClusterSetCached(string name)
    {
        var (policy, clusters) = Destinations.Policy(name);
        var all = Destinations.Make(("A", 1), ("B", 1), ("C", 1));
        var cluster = Destinations.Cluster(all);
        Assert.NotNull(policy.PickDestination(Context(0), cluster, all));
        var cached = clusters.CachedSet(cluster);
        Assert.NotNull(cached);
        Assert.Equal(["A", "B", "C"], cached.Destinations.ToArray().Select(d => d.DestinationId));

        for (var i = 0; i < 30; i++)
        {
            // As the retry middleware does it: a new array without the destination that failed.
            var picked = policy.PickDestination(Context(i), cluster, new[] { all[0], all[2] })!.DestinationId;
            Assert.NotEqual("B", picked);
            Assert.Same(cached, clusters.CachedSet(cluster));
            Assert.NotNull(policy.PickDestination(Context(i), cluster, all));
            Assert.Same(cached, clusters.CachedSet(cluster));
        }
    }

    [Fact]
    public void ClusterSetChange_ReplacesTheCachedSet()
    {
        var (policy, clusters) = Destinations.Policy("RoundRobin");
        var all = Destinations.Make(("A", 1), ("B", 1), ("C", 1));
        var cluster = Destinations.Cluster(all);
        policy.PickDestination(Context(0), cluster, all);
        var before = clusters.CachedSet(cluster);

        // A health change: YARP gives the cluster a new available list, and that one is kept.
        DestinationState[] withoutB = [all[0], all[2]];
        Destinations.Available(cluster, withoutB);
        policy.PickDestination(Context(0), cluster, withoutB);

        Assert.NotSame(before, clusters.CachedSet(cluster));
        Assert.Equal(["A", "C"], clusters.CachedSet(cluster)!.Destinations.ToArray().Select(d => d.DestinationId));
    }

    private static DefaultHttpContext Context(int client) =>
        new() { Connection = { RemoteIpAddress = new IPAddress([192, 0, 2, (byte)client]) } };
}
