using Balancer.Runtime;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.LoadBalancing;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Tests.Runtime;

/// <summary>
/// The available list with drained and maintenance destinations left out, rebuilt on every health or state change
/// of any destination: its cost must follow the destinations taken out, not the cluster's size.
/// </summary>
[Trait("Category", "Unit")]
public sealed class RuntimeAvailableDestinationsTests
{
    private static readonly ClusterConfig Config = new() { ClusterId = "big" };
    private readonly RuntimeOverrides _overrides = new(null);

    [Fact]
    public void NothingOutOfService_10000Destinations_PassesYarpsListOn_WithoutAllocatingPerDestination()
    {
        var all = Destinations.Make([.. Enumerable.Range(0, 10_000).Select(i => ($"d{i:00000}", 1))]);
        // Another cluster's drained destination of the same name must not count.
        Drain("other", "d00001", AdminMode.Drain);
        var policy = new RuntimeAvailableDestinations(new AllOf(), _overrides);
        policy.GetAvailalableDestinations(Config, all);

        IReadOnlyList<DestinationState> available = null!;
        var allocated = Allocations.Fewest(() => available = policy.GetAvailalableDestinations(Config, all));

        Assert.Same(all, available);
        // Walking the overrides allocates an enumerator; a lookup key per destination would be hundreds of KB.
        Assert.InRange(allocated, 0, 1024);
    }

    [Fact]
    public void DrainedAndMaintenance_LeftOut_InOrder_CaseOfTheIdIgnored_ActiveOverridesKept()
    {
        var all = Destinations.Make(("A", 1), ("B", 1), ("C", 1), ("D", 1), ("E", 1));
        Drain("big", "b", AdminMode.Drain);
        Drain("BIG", "D", AdminMode.Maintenance);
        Drain("big", "E", AdminMode.Active);
        var policy = new RuntimeAvailableDestinations(new AllOf(), _overrides);

        Assert.Equal(["A", "C", "E"], policy.GetAvailalableDestinations(Config, all).Select(d => d.DestinationId));

        Drain("big", "b", AdminMode.Active);
        Assert.Equal(["A", "B", "C", "E"], policy.GetAvailalableDestinations(Config, all).Select(d => d.DestinationId));
    }

    private void Drain(string cluster, string destination, AdminMode mode) =>
        _overrides.Update(cluster, destination, o => new DestinationOverride(mode, mode == AdminMode.Active ? 5 : o?.Weight, DateTimeOffset.UnixEpoch, "test"));

    /// <summary>YARP's list as it is: every destination healthy.</summary>
    private sealed class AllOf : IAvailableDestinationsPolicy
    {
        public string Name => "All";

        public IReadOnlyList<DestinationState> GetAvailalableDestinations(ClusterConfig config, IReadOnlyList<DestinationState> allDestinations) => allDestinations;
    }
}
