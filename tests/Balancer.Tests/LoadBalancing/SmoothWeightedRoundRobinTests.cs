using Balancer.LoadBalancing;

namespace Balancer.Tests.LoadBalancing;

[Trait("Category", "Unit")]
public sealed class SmoothWeightedRoundRobinTests
{
    [Fact]
    public void RoundRobin_ThreeEqualDestinations_999Picks_SplitsExactly333()
    {
        var policy = new RoundRobinPolicy(EffectiveWeights.FileOnly());
        var cluster = new Yarp.ReverseProxy.Model.ClusterState("c");
        var destinations = Destinations.Make(("A", 1), ("B", 1), ("C", 1));

        var counts = Destinations.Count(999, () => policy.PickDestination(new DefaultHttpContext(), cluster, destinations)!);

        Assert.Equal(new Dictionary<string, int> { ["A"] = 333, ["B"] = 333, ["C"] = 333 }, counts);
    }

    [Fact]
    public void RoundRobin_Weights532_1000Picks_Splits500_300_200_Interleaved()
    {
        var policy = new RoundRobinPolicy(EffectiveWeights.FileOnly());
        var cluster = new Yarp.ReverseProxy.Model.ClusterState("c");
        var destinations = Destinations.Make(("A", 5), ("B", 3), ("C", 2));

        var sequence = new List<string>();
        for (var i = 0; i < 1000; i++)
        {
            sequence.Add(policy.PickDestination(new DefaultHttpContext(), cluster, destinations)!.DestinationId);
        }

        Assert.Equal(500, sequence.Count(id => id == "A"));
        Assert.Equal(300, sequence.Count(id => id == "B"));
        Assert.Equal(200, sequence.Count(id => id == "C"));
        Assert.True(LongestRun(sequence) <= 2, $"longest run of one destination was {LongestRun(sequence)}");
    }

    [Fact]
    public void Schedule_Weights532_IsNginxSmoothOrder()
    {
        // The sequence NGINX's smooth weighted round robin produces for weights 5, 3, 2.
        Assert.Equal([0, 1, 2, 0, 0, 1, 0, 2, 1, 0], SmoothWeightedRoundRobin.BuildSchedule([5, 3, 2]));
    }

    [Fact]
    public void Schedule_CommonFactor_IsReduced()
    {
        Assert.Equal([0, 1, 0], SmoothWeightedRoundRobin.BuildSchedule([200, 100]));
    }

    [Fact]
    public void RoundRobin_MembershipChange_RebuildsForNewSet_AndBackAgain()
    {
        var policy = new RoundRobinPolicy(EffectiveWeights.FileOnly());
        var all = Destinations.Make(("A", 1), ("B", 1), ("C", 1));
        var withoutB = new[] { all[0], all[2] };
        var cluster = Destinations.Cluster(all);
        Dictionary<string, int> Picks(int picks, IReadOnlyList<Yarp.ReverseProxy.Model.DestinationState> available)
        {
            Destinations.Available(cluster, available);
            return Destinations.Count(picks, () => policy.PickDestination(new DefaultHttpContext(), cluster, available)!);
        }

        // The full set first, so that a schedule kept from it would show in the picks that follow.
        Assert.Equal(new Dictionary<string, int> { ["A"] = 33, ["B"] = 33, ["C"] = 33 }, Picks(99, all));
        Assert.Equal(new Dictionary<string, int> { ["A"] = 50, ["C"] = 50 }, Picks(100, withoutB));
        Assert.Equal(new Dictionary<string, int> { ["A"] = 33, ["B"] = 33, ["C"] = 33 }, Picks(99, all));
    }

    [Fact]
    public void RoundRobin_EightThreads_100000ConcurrentPicks_Split50000_30000_20000Exactly()
    {
        const int Threads = 8;
        const int PerThread = 12_500;
        var policy = new RoundRobinPolicy(EffectiveWeights.FileOnly());
        var destinations = Destinations.Make(("A", 5), ("B", 3), ("C", 2));
        var cluster = Destinations.Cluster(destinations);
        var counts = new int[Threads, 3];
        using var start = new Barrier(Threads);

        var threads = Enumerable.Range(0, Threads).Select(t => new Thread(() =>
        {
            var context = new DefaultHttpContext();
            start.SignalAndWait();
            for (var i = 0; i < PerThread; i++)
            {
                counts[t, policy.PickDestination(context, cluster, destinations)!.DestinationId[0] - 'A']++;
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());

        var totals = Enumerable.Range(0, 3).Select(d => Enumerable.Range(0, Threads).Sum(t => counts[t, d])).ToArray();
        // Every pick takes its own position in the schedule, whichever thread asks: no position is lost or repeated.
        Assert.Equal([50_000, 30_000, 20_000], totals);
    }

    private static int LongestRun(List<string> sequence)
    {
        var longest = 1;
        var run = 1;
        for (var i = 1; i < sequence.Count; i++)
        {
            run = sequence[i] == sequence[i - 1] ? run + 1 : 1;
            longest = Math.Max(longest, run);
        }

        return longest;
    }
}
