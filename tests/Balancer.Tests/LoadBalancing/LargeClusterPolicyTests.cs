using System.Diagnostics;
using System.Net;
using Balancer.LoadBalancing;
using Balancer.Runtime;
using Xunit.Abstractions;
using Yarp.ReverseProxy.Model;

namespace Balancer.Tests.LoadBalancing;

/// <summary>
/// The policies over clusters of thousands of destinations with weights 1-1000: what a change costs the request
/// that meets it, what a pick costs after it, and what IpHash clients see when a destination leaves.
/// </summary>
[Trait("Category", "Unit")]
public sealed class LargeClusterPolicyTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("RoundRobin")]
    [InlineData("LeastConnections")]
    [InlineData("IpHash")]
    public void Change_10000Destinations_Weights1To1000_RebuildAllocatesAFewHundredBytesPerDestination_ThenPicksAllocateNothing(string name)
    {
        var (policy, clusters) = Destinations.Policy(name);
        var built = new List<Action>();
        clusters.RunBuild = built.Add;
        var all = Many(10_000, seed: 41);
        var cluster = Destinations.Cluster(all);
        var context = Context(7);
        policy.PickDestination(context, cluster, all);

        // A health change: one destination leaves, YARP hands over a new list.
        DestinationState[] withoutOne = [.. all.Where((_, i) => i != 5000)];
        Destinations.Available(cluster, withoutOne);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var clock = Stopwatch.StartNew();
        policy.PickDestination(context, cluster, withoutOne);
        var rebuildTime = clock.Elapsed;
        var rebuild = GC.GetAllocatedBytesForCurrentThread() - before;
        clock.Restart();
        built.ForEach(b => b());
        var tableTime = clock.Elapsed;

        // The fewest bytes of three rounds: twice in CI one round of a pick that allocates nothing counted
        // about 8 KB (the thread's count can move with a collection other tests start meanwhile), while a
        // pick that allocates shows in every round, at least 10,000 objects.
        const int Picks = 10_000;
        var picks = long.MaxValue;
        var pickTime = TimeSpan.MaxValue;
        for (var round = 0; round < 3; round++)
        {
            before = GC.GetAllocatedBytesForCurrentThread();
            clock.Restart();
            for (var i = 0; i < Picks; i++)
            {
                Assert.NotNull(policy.PickDestination(context, cluster, withoutOne));
            }

            pickTime = TimeSpan.FromTicks(Math.Min(pickTime.Ticks, clock.Elapsed.Ticks));
            picks = Math.Min(picks, GC.GetAllocatedBytesForCurrentThread() - before);
        }

        // Times are printed for the docs, not asserted: this machine's load decides them.
        output.WriteLine($"{name}, {withoutOne.Length} destinations: the request that met the change took {rebuildTime.TotalMilliseconds:0.000} ms and allocated {rebuild:N0} bytes ({rebuild / withoutOne.Length} a destination); " +
            $"table build off the request path {(built.Count == 0 ? "none" : $"{tableTime.TotalMilliseconds:0.0} ms")}; a pick then {pickTime.TotalNanoseconds / Picks:0} ns");
        Assert.InRange(rebuild, 1, 300L * withoutOne.Length);
        Assert.Equal(0, picks);
    }

    [Fact]
    public void RoundRobin_1000Destinations_Weights1To1000_1MillionPicks_EveryDestinationWithinOnePickOfItsShare()
    {
        const int Picks = 1_000_000;
        var (policy, clusters) = Destinations.Policy("RoundRobin");
        var all = Many(1000, seed: 43);
        var cluster = Destinations.Cluster(all);
        var context = Context(1);
        var counts = new Dictionary<DestinationState, int>(ReferenceEqualityComparer.Instance);
        for (var i = 0; i < Picks; i++)
        {
            var picked = policy.PickDestination(context, cluster, all)!;
            counts[picked] = counts.GetValueOrDefault(picked) + 1;
        }

        Assert.NotNull(clusters.CachedSet(cluster)!.Deadlines);
        double total = all.Sum(Weight);
        var worst = all.Max(d => Math.Abs(counts.GetValueOrDefault(d) - (double)Picks * Weight(d) / total));
        Assert.True(worst <= 1, $"a destination was {worst:0.##} picks from its share");
    }

    [Fact]
    public void RoundRobin_RetrySubsetOfALargeCluster_PicksFromTheSubsetByWeight_AndKeepsTheClusterOrder()
    {
        var (policy, clusters) = Destinations.Policy("RoundRobin");
        var all = Many(1000, seed: 44);
        var cluster = Destinations.Cluster(all);
        policy.PickDestination(Context(0), cluster, all);
        var cached = clusters.CachedSet(cluster);
        DestinationState[] subset = [all[1], all[2], all[3]];
        var seen = new HashSet<DestinationState>();
        for (var i = 0; i < 300; i++)
        {
            var picked = policy.PickDestination(Context(0), cluster, subset)!;
            Assert.True(Array.IndexOf(subset, picked) >= 0);
            seen.Add(picked);
        }

        Assert.Equal(3, seen.Count);
        Assert.Same(cached, clusters.CachedSet(cluster));
    }

    [Fact]
    public void IpHash_1000Destinations_TwoBalancers_AgreeFromTheFirstPick_AndNoClientMovesAfterwards()
    {
        var all = Many(1000, seed: 45);
        var (first, firstClusters) = Destinations.Policy("IpHash");
        var (second, secondClusters) = Destinations.Policy("IpHash");
        List<Action> pending = [];
        firstClusters.RunBuild = pending.Add;
        secondClusters.RunBuild = pending.Add;
        var firstCluster = Destinations.Cluster(all);
        var secondCluster = Destinations.Cluster([.. all.Reverse()]);
        var clients = Clients(20_000, seed: 46);
        string[] Picks(Yarp.ReverseProxy.LoadBalancing.ILoadBalancingPolicy policy, ClusterState cluster) =>
            [.. clients.Select(c => policy.PickDestination(Context(c), cluster, cluster.DestinationsState.AvailableDestinations)!.DestinationId)];

        // The first pick builds the table before it answers: nothing is left to build and no client moves later.
        var firstPicks = Picks(first, firstCluster);
        Assert.NotNull(firstClusters.CachedTable(firstCluster));
        Assert.Equal(firstPicks, Picks(second, secondCluster));
        Assert.Empty(pending);
        Assert.Equal(firstPicks, Picks(first, firstCluster));
        Assert.Equal(firstPicks, Picks(second, secondCluster));
    }

    [Fact]
    public void IpHash_10000Destinations_OneLeavesThenOneArrivesByAReload_TheLeaveHashesAndWeighsNone_TheArrivalBuildsOneTable()
    {
        var (policy, clusters) = Destinations.Policy("IpHash");
        List<Action> pending = [];
        clusters.RunBuild = pending.Add;
        var all = Many(10_001, seed: 50);
        DestinationState[] start = all[..10_000];
        var cluster = Destinations.Cluster(start);
        policy.PickDestination(Context(1), cluster, start);
        Assert.Equal(1, clusters.TableBuilds(cluster));

        // The table holds every configured destination's id hash and weight: the snapshot of the available ones needs neither.
        DestinationState[] withoutOne = [.. start.Where((_, i) => i != 4321)];
        Destinations.Available(cluster, withoutOne);
        policy.PickDestination(Context(1), cluster, withoutOne);
        var afterLeave = clusters.CachedSet(cluster)!;
        Assert.Equal(0, afterLeave.Computed);
        Assert.Empty(afterLeave.IdHashes);
        Assert.Equal(0, afterLeave.Weights.Length);
        Assert.Empty(pending);

        DestinationState[] withNewcomer = [.. withoutOne, all[10_000]];
        Destinations.Reconfigured(cluster, withNewcomer);
        policy.PickDestination(Context(1), cluster, withNewcomer);
        Assert.Single(pending);
        pending[0]();
        Assert.Equal(2, clusters.TableBuilds(cluster));
        var table = clusters.CachedTable(cluster)!;
        Assert.Equal(withNewcomer.Select(d => RendezvousHash.HashId(d.DestinationId)).Order(), table.IdHashes);
        Assert.Equal(table.Destinations.Select(Weight), table.Weights);
    }

    [Fact]
    public void IpHash_RetrySubsetOfALargeCluster_NeitherReplacesTheCachedSetAndAvailability_NorStartsABuild()
    {
        var (policy, clusters) = Destinations.Policy("IpHash");
        List<Action> pending = [];
        clusters.RunBuild = pending.Add;
        var all = Many(500, seed: 49);
        var cluster = Destinations.Cluster(all);
        policy.PickDestination(Context(1), cluster, all);
        pending.ForEach(build => build());
        pending.Clear();
        var cached = clusters.CachedSet(cluster);
        var table = clusters.CachedTable(cluster);
        var availability = clusters.CachedAvailability(cluster);
        Assert.NotNull(availability);

        for (var i = 0; i < 100; i++)
        {
            DestinationState[] subset = [.. all.Where((_, j) => j != i)];
            // Array.IndexOf, not Assert.Contains: a DestinationState is itself a one-item list, which xunit would compare as one.
            Assert.True(Array.IndexOf(subset, policy.PickDestination(Context((uint)i), cluster, subset)) >= 0);
        }

        Assert.Same(cached, clusters.CachedSet(cluster));
        Assert.Same(table, clusters.CachedTable(cluster));
        Assert.Same(availability, clusters.CachedAvailability(cluster));
        Assert.Empty(pending);
    }

    [Theory]
    [InlineData("RoundRobin")]
    [InlineData("LeastConnections")]
    public void DrainThenEnable_10000Destinations_WithAWeightOverride_OneRebuildEach_WeighingOnlyTheReturning(string name)
    {
        var overrides = new RuntimeOverrides(null);
        var (policy, clusters) = Destinations.Policy(name, new EffectiveWeights(overrides, TimeProvider.System));
        var all = Many(10_000, seed: 51);
        var cluster = Destinations.Cluster(all);
        var now = DateTimeOffset.UnixEpoch;
        // An operator's weight elsewhere in the cluster: every rebuild used to look each destination up in the overrides.
        overrides.Update("c", all[7].DestinationId, _ => new DestinationOverride(AdminMode.Active, 500, now, "test"));
        policy.PickDestination(Context(1), cluster, all);
        Assert.Equal(1, clusters.Builds(cluster));
        Assert.Equal(10_000, clusters.CachedSet(cluster)!.Computed);

        // A drain as the runtime API makes it: the mode first (a request may come in between), then YARP's new list.
        var drained = all[5000];
        overrides.Update("c", drained.DestinationId, o => new DestinationOverride(AdminMode.Drain, o?.Weight, now, "test"));
        policy.PickDestination(Context(1), cluster, all);
        Assert.Equal(1, clusters.Builds(cluster));
        DestinationState[] withoutOne = [.. all.Where(d => d != drained)];
        Destinations.Available(cluster, withoutOne);
        var before = GC.GetAllocatedBytesForCurrentThread();
        policy.PickDestination(Context(1), cluster, withoutOne);
        var bytes = GC.GetAllocatedBytesForCurrentThread() - before;
        var afterDrain = clusters.CachedSet(cluster)!;
        Assert.Equal(2, clusters.Builds(cluster));
        Assert.Equal(0, afterDrain.Computed);
        // Six arrays of a reference, a weight or a deadline per destination, nothing per destination besides.
        Assert.InRange(bytes, 1, 40L * withoutOne.Length);
        if (afterDrain.Deadlines is { } deadlines)
        {
            // Building the heap (at most two comparisons a destination) and one pick.
            Assert.InRange(deadlines.Comparisons, 1, 2L * withoutOne.Length + 64);
        }

        overrides.Update("c", drained.DestinationId, o => new DestinationOverride(AdminMode.Active, o?.Weight, now, "test"));
        Destinations.Available(cluster, all);
        policy.PickDestination(Context(1), cluster, all);
        var afterEnable = clusters.CachedSet(cluster)!;
        Assert.Equal(3, clusters.Builds(cluster));
        Assert.Equal(1, afterEnable.Computed);
        Assert.Equal(all.Select(d => SlowStart.ScaledWeight(d == all[7] ? 500 : Weight(d), SlowStart.Steps)), afterEnable.Weights.ToArray());
    }

    [Fact]
    public void RoundRobin_10000Destinations_AfterADrain_PicksExactlyAsAFreshOrderOfTheRest_NeverTheDrained()
    {
        var (policy, clusters) = Destinations.Policy("RoundRobin");
        var all = Many(10_000, seed: 52);
        var cluster = Destinations.Cluster(all);
        for (var i = 0; i < 1000; i++)
        {
            policy.PickDestination(Context(1), cluster, all);
        }

        var drained = all[1234];
        DestinationState[] withoutOne = [.. all.Where(d => d != drained)];
        Destinations.Available(cluster, withoutOne);
        string[] picks = [.. Enumerable.Range(0, 30_000).Select(_ => policy.PickDestination(Context(1), cluster, withoutOne)!.DestinationId)];

        Assert.Equal(0, clusters.CachedSet(cluster)!.Computed);
        var fresh = new EarliestDeadlineFirst([.. withoutOne.Select(d => SlowStart.ScaledWeight(Weight(d), SlowStart.Steps))]);
        Assert.Equal(Enumerable.Range(0, 30_000).Select(_ => withoutOne[fresh.Next()].DestinationId), picks);
        Assert.DoesNotContain(drained.DestinationId, picks);
    }

    [Theory]
    [InlineData("RoundRobin")]
    [InlineData("LeastConnections")]
    [InlineData("IpHash")]
    public void Prepare_AfterAChange_10000Destinations_TheNextRequestBuildsAndAllocatesNothing(string name)
    {
        var (policy, clusters) = Destinations.Policy(name);
        clusters.RunBuild = build => build();
        var all = Many(10_000, seed: 53);
        var cluster = Destinations.Cluster(all);
        var context = Context(9);
        policy.PickDestination(context, cluster, all);

        DestinationState[] withoutOne = [.. all.Where((_, i) => i != 42)];
        Destinations.Available(cluster, withoutOne);
        ((IPreparingPolicy)policy).Prepare(cluster);
        Assert.Equal(2, clusters.Builds(cluster));

        // The least of three rounds, as above: a collection started elsewhere can be counted on this thread once.
        var bytes = long.MaxValue;
        for (var round = 0; round < 3; round++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            Assert.NotSame(all[42], policy.PickDestination(context, cluster, withoutOne));
            bytes = Math.Min(bytes, GC.GetAllocatedBytesForCurrentThread() - before);
        }

        Assert.Equal(0, bytes);
        Assert.Equal(2, clusters.Builds(cluster));
    }

    [Fact]
    public void PolicySnapshots_PreparesOnlyTheClustersOwnPolicy()
    {
        var (roundRobin, roundRobinClusters) = Destinations.Policy("RoundRobin");
        var (leastConnections, leastConnectionsClusters) = Destinations.Policy("LeastConnections");
        using var services = new ServiceCollection().AddSingleton(roundRobin).AddSingleton(leastConnections).BuildServiceProvider();
        var cluster = new ClusterState("c", new ClusterModel(new Yarp.ReverseProxy.Configuration.ClusterConfig { ClusterId = "c", LoadBalancingPolicy = "leastconnections" }, new HttpMessageInvoker(new SocketsHttpHandler())));
        Destinations.Available(cluster, Many(100, seed: 54));

        new PolicySnapshots(services).Prepare(cluster);

        Assert.Equal(0, roundRobinClusters.Builds(cluster));
        Assert.Equal(1, leastConnectionsClusters.Builds(cluster));
        Assert.Equal(100, leastConnectionsClusters.CachedSet(cluster)!.Destinations.Length);
    }

    private static DestinationState[] Many(int count, int seed) => Destinations.Many(count, seed);

    private static int Weight(DestinationState destination) => Destinations.Weight(destination);

    private static uint[] Clients(int count, int seed) => Destinations.Clients(count, seed);

    private static DefaultHttpContext Context(uint client) => Destinations.Context(client);
}
