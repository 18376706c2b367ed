using Balancer.LoadBalancing;
using Balancer.Runtime;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace Balancer.Tests.LoadBalancing;

/// <summary>
/// A large cluster's snapshot built into the arrays of the one before last (see <see cref="DestinationSet"/>): after
/// every change it picks exactly as a snapshot built into new arrays would, and no pick holding a snapshot ever has
/// its arrays taken over.
/// </summary>
[Trait("Category", "Unit")]
public sealed class SnapshotHandOverTests
{
    private const int Count = 2_000;

    [Theory]
    [InlineData("RoundRobin", 61)]
    [InlineData("RoundRobin", 62)]
    [InlineData("LeastConnections", 63)]
    [InlineData("LeastConnections", 64)]
    public void RandomChanges_AfterEveryOne_PicksExactlyAsAFreshSnapshot_InTheArraysOfAnEarlierOne(string name, int seed)
    {
        var (policy, clusters) = Destinations.Policy(name);
        var all = Destinations.Many(Count, seed);
        var cluster = Destinations.Cluster(all);
        var random = new Random(seed);
        var up = Enumerable.Repeat(true, Count).ToArray();
        ((IPreparingPolicy)policy).Prepare(cluster);
        var changes = 0;
        for (var step = 0; step < 60; step++)
        {
            // One to three destinations out or back, as health and the runtime API change them.
            var before = up.ToArray();
            for (var k = random.Next(1, 4); k > 0; k--)
            {
                var i = random.Next(Count);
                up[i] = !up[i] || up.Count(u => u) < 500;
            }

            changes += before.AsSpan().SequenceEqual(up) ? 0 : 1;

            DestinationState[] available = [.. all.Where((_, i) => up[i])];
            Destinations.Available(cluster, available);
            if (step % 3 != 0)
            {
                // Otherwise the first pick builds it, as a request meeting an unprepared change does.
                ((IPreparingPolicy)policy).Prepare(cluster);
            }

            if (name == "RoundRobin")
            {
                AssertRoundRobinPicksAsFresh(policy, cluster, available, picks: 3 * available.Length);
            }
            else
            {
                AssertLeastConnectionsPicksAsFresh(policy, cluster, available, random, picks: 500);
            }
        }

        // The first snapshot and the first change's allocate their arrays; every later one takes over those of the one before last.
        Assert.True(changes > 40);
        Assert.Equal(changes + 1, clusters.Builds(cluster));
        Assert.Equal(changes - 1, clusters.HandOvers(cluster));
    }

    [Theory]
    [InlineData("RoundRobin")]
    [InlineData("LeastConnections")]
    public void APickHoldingASnapshot_KeepsItsArrays_UntilItLeaves_ThenTheNextChangeTakesThemOver(string name)
    {
        var weights = EffectiveWeights.FileOnly();
        var (policy, clusters) = Destinations.Policy(name, weights);
        var kind = name == "RoundRobin" ? DestinationSet.PickKind.RoundRobin : DestinationSet.PickKind.LeastConnections;
        var all = Destinations.Many(Count, seed: 65);
        var cluster = Destinations.Cluster(all);
        ((IPreparingPolicy)policy).Prepare(cluster);
        var state = clusters.For(cluster);

        // A pick in progress on the first snapshot while two changes replace it: the second would take its arrays over,
        // and takes none (the first set aside stays out of use, and is dropped when the second is set aside).
        var held = state.Enter(cluster, all, weights, kind);
        Destinations.Available(cluster, [.. all.Where((_, i) => i != 10)]);
        ((IPreparingPolicy)policy).Prepare(cluster);
        Destinations.Available(cluster, all);
        ((IPreparingPolicy)policy).Prepare(cluster);
        Assert.Equal(0, clusters.HandOvers(cluster));
        Assert.NotSame(held, clusters.CachedSet(cluster));
        Assert.NotNull(held.Pooled);

        // Its order is untouched: exactly a fresh one over its own destinations.
        var fresh = Fresh(all);
        if (held.Deadlines is { } deadlines)
        {
            Assert.Equal(Enumerable.Range(0, 3 * Count).Select(_ => fresh.Next()), Enumerable.Range(0, 3 * Count).Select(_ => deadlines.Next()));
        }
        else
        {
            var turns = new LeastConnections.Turns(Count);
            var idle = new int[Count];
            Assert.Equal(
                Enumerable.Range(0, 3 * Count).Select(_ => LeastConnections.PickAtScale(idle, Weights(all), turns)),
                Enumerable.Range(0, 3 * Count).Select(_ => LeastConnections.PickAtScale(idle, held.Weights, held.Turns!)));
        }

        // Once no pick holds them, every change takes over the arrays of the snapshot before last.
        ClusterPolicyState.Exit(held);
        Destinations.Available(cluster, [.. all.Where((_, i) => i != 20)]);
        ((IPreparingPolicy)policy).Prepare(cluster);
        Assert.Equal(1, clusters.HandOvers(cluster));
        Destinations.Available(cluster, all);
        ((IPreparingPolicy)policy).Prepare(cluster);
        Assert.Equal(2, clusters.HandOvers(cluster));
    }

    [Theory]
    [InlineData("RoundRobin")]
    [InlineData("LeastConnections")]
    public async Task ChangesWhileThreadsPick_EveryPickIsADestination_AndTheLastSnapshotPicksAsAFreshOne(string name)
    {
        var (policy, clusters) = Destinations.Policy(name);
        var all = Destinations.Many(Count, seed: 66);
        var cluster = Destinations.Cluster(all);
        var known = all.ToHashSet();
        var context = Destinations.Context(5);
        using var stop = new CancellationTokenSource();
        var picks = new int[3];
        var pickers = Enumerable.Range(0, picks.Length).Select(t => Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                var picked = policy.PickDestination(context, cluster, cluster.DestinationsState.AvailableDestinations);
                Assert.Contains(picked!, known);
                Interlocked.Increment(ref picks[t]);
            }
        })).ToArray();

        // Changes until every thread has picked a few hundred times among them (on a loaded machine threads start late).
        var random = new Random(67);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        var changes = 0;
        for (; changes < 400 || Enumerable.Range(0, picks.Length).Any(t => Volatile.Read(ref picks[t]) < 300); changes++)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the picking threads made {string.Join(", ", picks)} picks in 60 s");
            var i = random.Next(Count);
            DestinationState[] withoutOne = [.. all.Where((_, j) => j != i)];
            Destinations.Available(cluster, changes % 2 == 0 ? withoutOne : all);
            ((IPreparingPolicy)policy).Prepare(cluster);
        }

        stop.Cancel();
        await Task.WhenAll(pickers);
        // Most changes took over the arrays of the snapshot before last; one that found a pick holding it allocated.
        Assert.InRange(clusters.HandOvers(cluster), 1, changes - 1);

        // The last change, prepared with no pick running: whatever stale picks did, the snapshot is a fresh one.
        DestinationState[] available = [.. all.Where((_, j) => j != 1)];
        Destinations.Available(cluster, available);
        ((IPreparingPolicy)policy).Prepare(cluster);
        if (name == "RoundRobin")
        {
            AssertRoundRobinPicksAsFresh(policy, cluster, available, picks: 2 * available.Length);
        }
        else
        {
            AssertLeastConnectionsPicksAsFresh(policy, cluster, available, random, picks: 300);
        }
    }

    private static void AssertRoundRobinPicksAsFresh(ILoadBalancingPolicy policy, ClusterState cluster, DestinationState[] available, int picks)
    {
        var fresh = Fresh(available);
        var context = Destinations.Context(1);
        for (var p = 0; p < picks; p++)
        {
            var expected = available[fresh.Next()];
            var picked = policy.PickDestination(context, cluster, available);
            if (!ReferenceEquals(expected, picked))
            {
                Assert.Fail($"pick {p} of {available.Length} destinations: {picked?.DestinationId}, a fresh order gives {expected.DestinationId}");
            }
        }
    }

    private static void AssertLeastConnectionsPicksAsFresh(ILoadBalancingPolicy policy, ClusterState cluster, DestinationState[] available, Random random, int picks)
    {
        // Some destinations busy, so that the least loaded and the ties among them both decide.
        var inFlight = new int[available.Length];
        for (var i = 0; i < available.Length; i++)
        {
            inFlight[i] = random.Next(4) == 0 ? 0 : random.Next(1, 4);
            available[i].ConcurrentRequestCount = inFlight[i];
        }

        var weights = Weights(available);
        var turns = new LeastConnections.Turns(available.Length);
        var context = Destinations.Context(1);
        for (var p = 0; p < picks; p++)
        {
            var expected = available[LeastConnections.PickAtScale(inFlight, weights, turns)];
            var picked = policy.PickDestination(context, cluster, available);
            if (!ReferenceEquals(expected, picked))
            {
                Assert.Fail($"pick {p} of {available.Length} destinations: {picked?.DestinationId}, fresh turns give {expected.DestinationId}");
            }
        }

        foreach (var destination in available)
        {
            destination.ConcurrentRequestCount = 0;
        }
    }

    private static EarliestDeadlineFirst Fresh(IReadOnlyList<DestinationState> destinations) => new(Weights(destinations));

    private static int[] Weights(IEnumerable<DestinationState> destinations) =>
        [.. destinations.Select(d => SlowStart.ScaledWeight(Destinations.Weight(d), SlowStart.Steps))];
}
