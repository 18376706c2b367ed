using Balancer.Health;
using Balancer.Hosting;
using Balancer.LoadBalancing;
using Balancer.Runtime;
using Balancer.Telemetry;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.LoadBalancing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace Balancer.Tests.Runtime;

/// <summary>
/// The whole of one state change in a cluster of 10,000 destinations, as the runtime API and the health tracker make
/// it: YARP's own cluster updater with the balancer's available-destinations wrapper, then the policy's snapshot for
/// the new list, all on the changing thread. Bounded by the bytes it allocates and the destinations it weighs again,
/// not by time: a change must cost one array of the available destinations and the policy's own arrays, nothing more.
/// </summary>
[Trait("Category", "Unit")]
public sealed class StateChangeCostTests : IDisposable
{
    private const int Count = 10_000;

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly RuntimeOverrides _overrides = new(null);
    private readonly ServiceProvider _services;
    private readonly IClusterDestinationsUpdater _updater;
    private readonly DestinationHealthTracker _tracker;
    private ClusterState _cluster = null!;
    private DestinationState[] _all = null!;
    private int _buildsRequested;

    public StateChangeCostTests()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddReverseProxy();
        services.Decorate<IAvailableDestinationsPolicy>((_, inner) => new RuntimeAvailableDestinations(inner, _overrides));
        _services = services.BuildServiceProvider();
        _updater = _services.GetRequiredService<IClusterDestinationsUpdater>();
        _tracker = new DestinationHealthTracker(_updater, _time, new BalancerMetricsRegistry(), NullLogger<DestinationHealthTracker>.Instance);
        _ = new SlowStartTrigger(_tracker, _overrides, _time);
    }

    [Theory]
    [InlineData("RoundRobin", 24)]
    [InlineData("LeastConnections", 20)]
    [InlineData("IpHash", 9)]
    public void Drain_10000Destinations_AllocatesTheAvailableArrayAndTheSnapshotOnly_WeighingNone(string name, int bytesPerDestination)
    {
        var (policy, clusters) = Cluster(name, slowStart: null);
        var bytes = long.MaxValue;
        for (var round = 0; round < 3; round++)
        {
            var id = _all[1000 * round + 17].DestinationId;
            var before = GC.GetAllocatedBytesForCurrentThread();
            _overrides.Update("c", id, o => new DestinationOverride(AdminMode.Drain, o?.Weight, _time.GetUtcNow(), "test"));
            _updater.UpdateAvailableDestinations(_cluster);
            ((IPreparingPolicy)policy).Prepare(_cluster);
            bytes = Math.Min(bytes, GC.GetAllocatedBytesForCurrentThread() - before);

            var available = _cluster.DestinationsState.AvailableDestinations;
            Assert.Equal(Count - round - 1, available.Count);
            Assert.DoesNotContain(available, d => d.DestinationId == id);
            var set = clusters.CachedSet(_cluster)!;
            // All but a few: a list read through the array of all destinations, which the policy reads into its own buffer.
            Assert.IsType<AvailableList>(available);
            Assert.True(available.SequenceEqual(set.Destinations.ToArray()));
            // It weighed no destination again.
            Assert.Equal(0, set.Computed);
        }

        // YARP's list grown by doubling, a filtered copy of it and a copy of each in the snapshot came to more than twice this.
        Assert.InRange(bytes, 1, (long)bytesPerDestination * Count + 16 * 1024);
        AssertNoTableBuilt(clusters);
    }

    /// <summary>
    /// Drains, enables, Downs and Ups one after another: past the first change (which makes the arrays the snapshots then
    /// hand on), each allocates no array of the cluster's size, only a few small objects: the available list of all but
    /// one is read through the array of all destinations, and the policy's snapshot is built into the arrays of the one
    /// before last.
    /// </summary>
    [Theory]
    [InlineData("RoundRobin")]
    [InlineData("LeastConnections")]
    [InlineData("IpHash")]
    public void DrainsAndEnables_DownsAndUps_10000Destinations_PastTheFirstTwo_EachAllocatesUnder4KB(string name)
    {
        const int Changes = 24;
        const long Bound = 4 * 1024;
        // The fewest bytes of each kind of change (see Allocations for why the fewest), past the first two.
        var fewest = new Dictionary<string, long>();
        var (policy, clusters) = Cluster(name, slowStart: null);
        var random = new Random(61);
        var destination = _all[0];
        for (var change = 0; change < Changes; change++)
        {
            var outOf = change % 2 == 0;
            destination = outOf ? _all[random.Next(Count)] : destination;
            var before = GC.GetAllocatedBytesForCurrentThread();
            if (change % 4 < 2)
            {
                _overrides.Update("c", destination.DestinationId, o => new DestinationOverride(outOf ? AdminMode.Drain : AdminMode.Active, o?.Weight, _time.GetUtcNow(), "test"));
                _updater.UpdateAvailableDestinations(_cluster);
            }
            else
            {
                _tracker.SetPassive(_cluster, destination, outOf ? DestinationHealth.Unhealthy : DestinationHealth.Unknown, TimeSpan.FromMinutes(1), "test", clearedByProbe: false);
            }

            ((IPreparingPolicy)policy).Prepare(_cluster);
            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

            var list = _cluster.DestinationsState.AvailableDestinations;
            Assert.Equal(outOf ? Count - 1 : Count, list.Count);
            Assert.Equal(outOf, !list.Contains(destination));
            Assert.True(list.SequenceEqual(clusters.CachedSet(_cluster)!.Destinations.ToArray()));
            if (change > 1)
            {
                var kind = change % 4 < 2 ? (outOf ? "drain" : "enable") : (outOf ? "Down" : "Up");
                fewest[kind] = Math.Min(fewest.GetValueOrDefault(kind, long.MaxValue), allocated);
            }
        }

        Assert.Equal(4, fewest.Count);
        Assert.All(fewest, kind => Assert.True(kind.Value is > 0 and <= Bound, $"a {kind.Key} allocated {kind.Value:N0} bytes"));
        // Every change after the first built its snapshot into the arrays of the one before last.
        Assert.Equal(Changes + 1, clusters.Builds(_cluster));
        Assert.Equal(Changes - 1, clusters.HandOvers(_cluster));
    }

    /// <summary>IpHash's table is of the configured destinations: a health or admin change neither builds nor asks for one.</summary>
    private void AssertNoTableBuilt(ClusterPolicyState.Table clusters)
    {
        Assert.Equal(0, _buildsRequested);
        Assert.Equal(clusters.CachedTable(_cluster) is null ? 0 : 1, clusters.TableBuilds(_cluster));
    }

    [Theory]
    [InlineData("RoundRobin", 24)]
    [InlineData("LeastConnections", 20)]
    [InlineData("IpHash", 9)]
    public void DownThenUp_10000Destinations_NoSlowStart_WeighsOnlyTheReturning_AndAllocatesTheSnapshotOnly(string name, int bytesPerDestination)
    {
        var (policy, clusters) = Cluster(name, slowStart: null);
        var generation = _overrides.Generation;
        var destination = _all[4321];
        var bytes = long.MaxValue;
        foreach (var health in new[] { DestinationHealth.Unhealthy, DestinationHealth.Unknown })
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            _tracker.SetPassive(_cluster, destination, health, TimeSpan.FromMinutes(1), "test", clearedByProbe: false);
            ((IPreparingPolicy)policy).Prepare(_cluster);
            bytes = Math.Min(bytes, GC.GetAllocatedBytesForCurrentThread() - before);
            Assert.Equal(health == DestinationHealth.Unhealthy ? DestinationHealthView.Down : DestinationHealthView.Up, DestinationHealthView.Of(destination));
            Assert.Equal(health == DestinationHealth.Unhealthy ? Count - 1 : Count, clusters.CachedSet(_cluster)!.Destinations.Length);
            // Without slow start the returning destination's weight is what it was: no snapshot is stale, none re-weighs all.
            // IpHash weighs none: its table holds every configured destination's weight.
            Assert.Equal(generation, _overrides.Generation);
            Assert.Equal(health == DestinationHealth.Unhealthy || name == "IpHash" ? 0 : 1, clusters.CachedSet(_cluster)!.Computed);
        }

        Assert.InRange(bytes, 1, (long)bytesPerDestination * Count + 16 * 1024);
        AssertNoTableBuilt(clusters);
    }

    [Theory]
    [InlineData("RoundRobin")]
    [InlineData("LeastConnections")]
    [InlineData("IpHash")]
    public void Drain_OfADestinationAlreadyDown_NewListOfTheSameDestinations_KeepsTheSnapshot_AllocatingNothing(string name)
    {
        var (policy, clusters) = Cluster(name, slowStart: null);
        var destination = _all[99];
        _tracker.SetPassive(_cluster, destination, DestinationHealth.Unhealthy, TimeSpan.FromMinutes(1), "test", clearedByProbe: false);
        ((IPreparingPolicy)policy).Prepare(_cluster);
        var set = clusters.CachedSet(_cluster)!;
        var builds = clusters.Builds(_cluster);

        var listBefore = _cluster.DestinationsState.AvailableDestinations;
        _overrides.Update("c", destination.DestinationId, o => new DestinationOverride(AdminMode.Drain, o?.Weight, _time.GetUtcNow(), "test"));
        _updater.UpdateAvailableDestinations(_cluster);
        Assert.NotSame(listBefore, _cluster.DestinationsState.AvailableDestinations);
        var bytes = Allocations.Fewest(() => ((IPreparingPolicy)policy).Prepare(_cluster));

        Assert.Same(set, clusters.CachedSet(_cluster));
        Assert.Equal(builds, clusters.Builds(_cluster));
        Assert.Equal(0, bytes);
    }

    [Fact]
    public void DownThenUp_WithSlowStart_TheReturningDestinationRampsFromATenth()
    {
        var (policy, clusters) = Cluster("RoundRobin", slowStart: "00:00:30");
        var generation = _overrides.Generation;
        var destination = _all[77];
        _tracker.SetPassive(_cluster, destination, DestinationHealth.Unhealthy, TimeSpan.FromMinutes(1), "test", clearedByProbe: false);
        _tracker.SetPassive(_cluster, destination, DestinationHealth.Unknown, TimeSpan.FromMinutes(1), "test", clearedByProbe: false);
        ((IPreparingPolicy)policy).Prepare(_cluster);

        Assert.NotEqual(generation, _overrides.Generation);
        var set = clusters.CachedSet(_cluster)!;
        var weight = DestinationWeight.Of(destination.Model.Config);
        Assert.Equal(SlowStart.ScaledWeight(weight, 0), set.Weights[Array.IndexOf(set.Destinations.ToArray(), destination)]);
        Assert.Equal(SlowStart.ScaledWeight(DestinationWeight.Of(_all[78].Model.Config), SlowStart.Steps), set.Weights[Array.IndexOf(set.Destinations.ToArray(), _all[78])]);
    }

    [Theory]
    [InlineData("HealthyOrPanic", 2)]
    [InlineData("HealthyAndUnknown", 0)]
    public void BuiltInPolicies_EveryDestinationUnhealthy_PanicUsesAllButThoseOutOfService(string availablePolicy, int expected)
    {
        var all = Destinations.Make(("A", 1), ("B", 1), ("C", 1));
        var config = new ClusterConfig { ClusterId = "c", HealthCheck = new HealthCheckConfig { Passive = new PassiveHealthCheckConfig { Enabled = true } } };
        var policy = new RuntimeAvailableDestinations(new NeverAsked(availablePolicy), _overrides);
        foreach (var destination in all)
        {
            destination.Health.Passive = DestinationHealth.Unhealthy;
        }

        _overrides.Update("c", "b", o => new DestinationOverride(AdminMode.Maintenance, null, _time.GetUtcNow(), "test"));

        var available = policy.GetAvailalableDestinations(config, all);

        string[] ids = expected == 0 ? [] : ["A", "C"];
        Assert.Equal(ids, available.Select(d => d.DestinationId));
    }

    [Fact]
    public void BuiltInPolicy_UnhealthyAndDrainedLeftOut_InOrder_ActiveIgnoredWhenItsChecksAreOff()
    {
        var all = Destinations.Make(("A", 1), ("B", 1), ("C", 1), ("D", 1), ("E", 1));
        var config = new ClusterConfig { ClusterId = "c", HealthCheck = new HealthCheckConfig { Passive = new PassiveHealthCheckConfig { Enabled = true } } };
        var policy = new RuntimeAvailableDestinations(new NeverAsked("HealthyOrPanic"), _overrides);
        all[1].Health.Passive = DestinationHealth.Unhealthy;
        all[2].Health.Active = DestinationHealth.Unhealthy;
        _overrides.Update("c", "D", o => new DestinationOverride(AdminMode.Drain, null, _time.GetUtcNow(), "test"));

        Assert.Equal(["A", "C", "E"], policy.GetAvailalableDestinations(config, all).Select(d => d.DestinationId));

        _overrides.Update("c", "D", o => new DestinationOverride(AdminMode.Active, null, _time.GetUtcNow(), "test"));
        all[1].Health.Passive = DestinationHealth.Unknown;
        // Every destination available: one array of all of them for this list, the same on every change.
        var every = policy.GetAvailalableDestinations(config, all);
        Assert.Equal(all.Select(d => d.DestinationId), every.Select(d => d.DestinationId));
        Assert.Same(every, policy.GetAvailalableDestinations(config, all));
    }

    public void Dispose()
    {
        _tracker.Dispose();
        _services.Dispose();
    }

    private (ILoadBalancingPolicy Policy, ClusterPolicyState.Table Clusters) Cluster(string name, string? slowStart)
    {
        var weights = new EffectiveWeights(_overrides, _time);
        var (policy, clusters) = Destinations.Policy(name, weights);
        clusters.RunBuild = _ => _buildsRequested++;
        var random = new Random(60);
        _all = Destinations.Make([.. Enumerable.Range(0, Count).Select(i => ($"d{i:00000}", random.Next(1, 1001)))]);
        _cluster = new ClusterState("c", new ClusterModel(
            new ClusterConfig
            {
                ClusterId = "c",
                LoadBalancingPolicy = name,
                Metadata = slowStart is null ? null : new Dictionary<string, string> { [SlowStart.MetadataKey] = slowStart },
                HealthCheck = new HealthCheckConfig
                {
                    Active = new ActiveHealthCheckConfig { Enabled = true },
                    Passive = new PassiveHealthCheckConfig { Enabled = true },
                },
            },
            new HttpMessageInvoker(new SocketsHttpHandler())));
        foreach (var destination in _all)
        {
            // Probed and found healthy, so that a destination coming back is Up.
            destination.Health.Active = DestinationHealth.Healthy;
            _cluster.Destinations.TryAdd(destination.DestinationId, destination);
        }

        _updater.UpdateAllDestinations(_cluster);
        ((IPreparingPolicy)policy).Prepare(_cluster);
        Assert.Equal(Count, clusters.CachedSet(_cluster)!.Destinations.Length);
        return (policy, clusters);
    }

    /// <summary>One of YARP's built-in policies by name, whose rule the wrapper applies itself.</summary>
    private sealed class NeverAsked(string name) : IAvailableDestinationsPolicy
    {
        public string Name => name;

        public IReadOnlyList<DestinationState> GetAvailalableDestinations(ClusterConfig config, IReadOnlyList<DestinationState> allDestinations) =>
            throw new InvalidOperationException("the wrapper applies the built-in rule itself");
    }
}
