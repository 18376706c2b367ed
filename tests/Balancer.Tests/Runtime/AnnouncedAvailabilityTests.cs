using Balancer.Health;
using Balancer.Hosting;
using Balancer.LoadBalancing;
using Balancer.Runtime;
using Balancer.Telemetry;
using Balancer.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Tests.Runtime;

/// <summary>
/// The available list computed from announced changes (only the destinations announced looked at again) against the
/// same wrapper looking at every destination: after every drain, enable, maintenance and health change, the same list,
/// in the same order, panic included, with YARP's own cluster updater and its debounce in between.
/// </summary>
[Trait("Category", "Unit")]
public sealed class AnnouncedAvailabilityTests : IDisposable
{
    private static readonly AdminMode[] Modes = [AdminMode.Active, AdminMode.Drain, AdminMode.Maintenance];

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly RuntimeOverrides _overrides = new(null);
    private readonly AvailabilityChanges _changes = new();
    private readonly List<RuntimeAvailableDestinations> _wrappers = [];
    private readonly ServiceProvider _services;
    private readonly IClusterDestinationsUpdater _updater;
    private readonly DestinationHealthTracker _tracker;

    public AnnouncedAvailabilityTests()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddReverseProxy();
        services.Decorate<IAvailableDestinationsPolicy>((_, inner) =>
        {
            var wrapper = new RuntimeAvailableDestinations(inner, _overrides, _changes);
            _wrappers.Add(wrapper);
            return wrapper;
        });
        services.Decorate<IClusterDestinationsUpdater>((sp, inner) => new PreparingDestinationsUpdater(inner, new PolicySnapshots(sp), _changes));
        _services = services.BuildServiceProvider();
        _updater = _services.GetRequiredService<IClusterDestinationsUpdater>();
        _tracker = new DestinationHealthTracker(_updater, _time, new BalancerMetricsRegistry(), NullLogger<DestinationHealthTracker>.Instance, availability: _changes);
    }

    [Theory]
    [InlineData("HealthyOrPanic")]
    [InlineData("HealthyAndUnknown")]
    public void RandomDrainsEnablesAndHealthChanges_EveryStep_TheListOfAFullPass_NoneComputedInFull(string availablePolicy)
    {
        // Six destinations, so that every one of them is often unhealthy at once (panic for HealthyOrPanic).
        var (cluster, all) = Cluster(availablePolicy, 6);
        var random = new Random(71);
        var panics = 0;
        for (var step = 0; step < 3000; step++)
        {
            RandomChange(cluster, all, random);
            AssertSameAsAFullPass(cluster);
            panics += all.All(d => d.Health.Active == DestinationHealth.Unhealthy || d.Health.Passive == DestinationHealth.Unhealthy) ? 1 : 0;
        }

        Assert.InRange(panics, 50, 3000);
        // The list of all destinations computed once, when the cluster was made; every change since read only its own.
        Assert.Equal(1, Wrapper(availablePolicy).FullPasses);
    }

    [Fact]
    public void EveryDestinationDown_Panic_ThenDrainedAndBackOneByOne_TheListOfAFullPassAtEveryStep()
    {
        var (cluster, all) = Cluster("HealthyOrPanic", 5);
        foreach (var destination in all)
        {
            _tracker.SetActive(cluster, [new NewActiveDestinationHealth(destination, DestinationHealth.Unhealthy)]);
            AssertSameAsAFullPass(cluster);
        }

        // Panic: all of them, as YARP's HealthyOrPanic gives.
        Assert.Equal(["d0", "d1", "d2", "d3", "d4"], Sorted(cluster.DestinationsState.AvailableDestinations));
        Mode(cluster, all[2], AdminMode.Drain);
        AssertSameAsAFullPass(cluster);
        Assert.Equal(["d0", "d1", "d3", "d4"], Sorted(cluster.DestinationsState.AvailableDestinations));

        _tracker.SetActive(cluster, [new NewActiveDestinationHealth(all[2], DestinationHealth.Healthy)]);
        AssertSameAsAFullPass(cluster);
        // The only healthy destination is drained: no panic (health alone decides it, as before), and none available.
        Assert.Empty(cluster.DestinationsState.AvailableDestinations);

        _tracker.SetActive(cluster, [new NewActiveDestinationHealth(all[4], DestinationHealth.Healthy)]);
        AssertSameAsAFullPass(cluster);
        Assert.Equal(["d4"], Sorted(cluster.DestinationsState.AvailableDestinations));

        Mode(cluster, all[2], AdminMode.Active);
        AssertSameAsAFullPass(cluster);
        Assert.Equal(["d2", "d4"], Sorted(cluster.DestinationsState.AvailableDestinations));
        Assert.Equal(1, Wrapper("HealthyOrPanic").FullPasses);
    }

    [Fact]
    public void ThreeThreadsChangingAtOnce_TheFinalListIsThatOfAFullPass()
    {
        // Three, so that YARP's updater drops calls while two are in (its debounce) and another thread's computation reads them.
        var (cluster, all) = Cluster("HealthyOrPanic", 96);
        using var start = new Barrier(3);
        var threads = new Thread[3];
        for (var t = 0; t < threads.Length; t++)
        {
            var own = all.Where((_, i) => i % 3 == t).ToArray();
            var seed = 80 + t;
            threads[t] = new Thread(() =>
            {
                var random = new Random(seed);
                start.SignalAndWait();
                for (var step = 0; step < 2000; step++)
                {
                    RandomChange(cluster, own, random);
                }
            });
            threads[t].Start();
        }

        foreach (var thread in threads)
        {
            Assert.True(thread.Join(TimeSpan.FromMinutes(1)));
        }

        // Each update returns after its change is in the list (or after another thread's update that read it has).
        // A thread whose update YARP dropped goes on changing while the others compute, so more than the pending
        // changes kept may pile up: each such pile is read in full, and nothing else is.
        AssertSameAsAFullPass(cluster);
        Assert.Equal(1 + _changes.Overflows, Wrapper("HealthyOrPanic").FullPasses);
    }

    [Fact]
    public void ReloadBetweenChanges_TheNewListComputedInFull_ThenAnnouncedChangesAgain()
    {
        var (cluster, all) = Cluster("HealthyOrPanic", 8);
        Mode(cluster, all[1], AdminMode.Drain);
        _tracker.SetPassive(cluster, all[5], DestinationHealth.Unhealthy, TimeSpan.FromMinutes(1));

        // As YARP applies a reload that added a destination: a new list of all of them, every destination read.
        var added = new DestinationState("d8", Model());
        cluster.Destinations.TryAdd(added.DestinationId, added);
        _updater.UpdateAllDestinations(cluster);
        AssertSameAsAFullPass(cluster);
        Assert.Equal(2, Wrapper("HealthyOrPanic").FullPasses);

        Mode(cluster, added, AdminMode.Maintenance);
        _tracker.SetPassive(cluster, all[5], DestinationHealth.Unknown, TimeSpan.FromMinutes(1));
        Mode(cluster, all[1], AdminMode.Active);
        AssertSameAsAFullPass(cluster);
        Assert.Equal(["d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7"], Sorted(cluster.DestinationsState.AvailableDestinations));
        Assert.Equal(2, Wrapper("HealthyOrPanic").FullPasses);
    }

    [Fact]
    public void UnannouncedChange_WhileAnAnnouncedOneIsPending_IsReadToo_InAFullPass()
    {
        var (cluster, all) = Cluster("HealthyOrPanic", 8);
        // An announced change whose update YARP dropped (two others in): it stays pending.
        _overrides.Update("c", all[3].DestinationId, o => new DestinationOverride(AdminMode.Drain, o?.Weight, _time.GetUtcNow(), "test"));
        _changes.Announce(cluster, all[3]).Dispose();

        // A change made without announcing it, then an update: the next computation must read every destination.
        all[6].Health.Passive = DestinationHealth.Unhealthy;
        _updater.UpdateAvailableDestinations(cluster);

        AssertSameAsAFullPass(cluster);
        Assert.Equal(["d0", "d1", "d2", "d4", "d5", "d7"], Sorted(cluster.DestinationsState.AvailableDestinations));
        Assert.Equal(2, Wrapper("HealthyOrPanic").FullPasses);
    }

    [Fact]
    public void MoreChangesThanArePendingAtMost_OneFullPass()
    {
        var (cluster, all) = Cluster("HealthyOrPanic", 40);
        var down = all.Take(AvailabilityChanges.MaxPending + 1).Select(d => new NewActiveDestinationHealth(d, DestinationHealth.Unhealthy)).ToArray();

        _tracker.SetActive(cluster, down);

        AssertSameAsAFullPass(cluster);
        Assert.Equal(all.Length - down.Length, cluster.DestinationsState.AvailableDestinations.Count);
        Assert.Equal(2, Wrapper("HealthyOrPanic").FullPasses);
    }

    [Fact]
    public void DrainThenEnable_10000Destinations_ReadsOneDestination_AllocatesNoListOfTheClusterSize()
    {
        const int Count = 10_000;
        var (cluster, all) = Cluster("HealthyOrPanic", Count);
        var destination = all[4321];
        Mode(cluster, destination, AdminMode.Drain);
        Mode(cluster, destination, AdminMode.Active);
        var every = cluster.DestinationsState.AvailableDestinations;
        Assert.IsType<DestinationState[]>(every);

        var bytes = Allocations.Fewest(() =>
        {
            Mode(cluster, destination, AdminMode.Drain);
            // All but one: read through the array of all, with the one position left out.
            Assert.IsType<AvailableList>(cluster.DestinationsState.AvailableDestinations);
            Assert.Equal(Count - 1, cluster.DestinationsState.AvailableDestinations.Count);
            Mode(cluster, destination, AdminMode.Active);
            // Every destination available: the one array of them made for this list, not a copy per change.
            Assert.Same(every, cluster.DestinationsState.AvailableDestinations);
        });

        // The list of all but one and its position left out, the override records, YARP's state and the lookup keys: no
        // array of the 9,999 available (80 KB).
        Assert.InRange(bytes, 1, 4 * 1024);
        Assert.Equal(1, Wrapper("HealthyOrPanic").FullPasses);
    }

    public void Dispose()
    {
        _tracker.Dispose();
        _services.Dispose();
    }

    /// <summary>One change as the runtime API or the health tracker makes it, to a destination picked from <paramref name="among"/>.</summary>
    private void RandomChange(ClusterState cluster, DestinationState[] among, Random random)
    {
        var destination = among[random.Next(among.Length)];
        switch (random.Next(5))
        {
            case 0:
                Mode(cluster, destination, Modes[random.Next(Modes.Length)]);
                break;
            case 1:
                _tracker.SetPassive(cluster, destination, random.Next(2) == 0 ? DestinationHealth.Unhealthy : DestinationHealth.Unknown, TimeSpan.FromMinutes(1));
                break;
            default:
                var changes = new NewActiveDestinationHealth[random.Next(1, 4)];
                for (var i = 0; i < changes.Length; i++)
                {
                    changes[i] = new NewActiveDestinationHealth(among[random.Next(among.Length)], random.Next(2) == 0 ? DestinationHealth.Unhealthy : DestinationHealth.Healthy);
                }

                _tracker.SetActive(cluster, changes.DistinctBy(c => c.Destination));
                break;
        }
    }

    /// <summary>As the runtime API drains, takes into maintenance or enables a destination.</summary>
    private void Mode(ClusterState cluster, DestinationState destination, AdminMode mode)
    {
        _overrides.Update(cluster.ClusterId, destination.DestinationId, o => new DestinationOverride(mode, o?.Weight, _time.GetUtcNow(), "test"));
        using (_changes.Announce(cluster, destination))
        {
            _updater.UpdateAvailableDestinations(cluster);
        }
    }

    /// <summary>The cluster's available list is what a wrapper that reads every destination gives for it now.</summary>
    private void AssertSameAsAFullPass(ClusterState cluster)
    {
        var state = cluster.DestinationsState;
        var config = cluster.Model.Config;
        var full = new RuntimeAvailableDestinations(new NeverAsked(config.HealthCheck!.AvailableDestinationsPolicy!), _overrides)
            .GetAvailalableDestinations(config, state.AllDestinations);
        Assert.Equal(Ids(full), Ids(state.AvailableDestinations));
    }

    private RuntimeAvailableDestinations Wrapper(string availablePolicy) => _wrappers.Single(w => w.Name == availablePolicy);

    private (ClusterState Cluster, DestinationState[] All) Cluster(string availablePolicy, int count)
    {
        var cluster = new ClusterState("c", new ClusterModel(
            new ClusterConfig
            {
                ClusterId = "c",
                HealthCheck = new HealthCheckConfig
                {
                    AvailableDestinationsPolicy = availablePolicy,
                    Active = new ActiveHealthCheckConfig { Enabled = true },
                    Passive = new PassiveHealthCheckConfig { Enabled = true },
                },
            },
            new HttpMessageInvoker(new SocketsHttpHandler())));
        var all = new DestinationState[count];
        for (var i = 0; i < count; i++)
        {
            all[i] = new DestinationState($"d{i}", Model());
            cluster.Destinations.TryAdd(all[i].DestinationId, all[i]);
        }

        _updater.UpdateAllDestinations(cluster);
        Assert.Equal(1, Wrapper(availablePolicy).FullPasses);
        return (cluster, all);
    }

    private static DestinationModel Model() => new(new DestinationConfig { Address = "http://127.0.0.1:1/" });

    /// <summary>The ids in the list's order (YARP's list of all destinations is in its dictionary's order, not by name).</summary>
    private static string[] Ids(IReadOnlyList<DestinationState> destinations) => [.. destinations.Select(d => d.DestinationId)];

    private static string[] Sorted(IReadOnlyList<DestinationState> destinations) => [.. Ids(destinations).Order(StringComparer.Ordinal)];

    /// <summary>One of YARP's built-in policies by name, whose rule the wrapper applies itself.</summary>
    private sealed class NeverAsked(string name) : IAvailableDestinationsPolicy
    {
        public string Name => name;

        public IReadOnlyList<DestinationState> GetAvailalableDestinations(ClusterConfig config, IReadOnlyList<DestinationState> allDestinations) =>
            throw new InvalidOperationException("the wrapper applies the built-in rule itself");
    }
}
