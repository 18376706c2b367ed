using Balancer.LoadBalancing;
using Balancer.Tests.Infrastructure;

namespace Balancer.Tests.LoadBalancing;

[Trait("Category", "Unit")]
public sealed class LeastConnectionsTests
{
    [Fact]
    public void Pick_ReturnsTheDestinationWithFewestInFlight()
    {
        int[] weights = [1, 1, 1, 1];
        var schedule = SmoothWeightedRoundRobin.BuildSchedule(weights);
        for (uint position = 0; position < 6; position++)
        {
            Assert.Equal(2, LeastConnections.Pick([5, 3, 1, 4], weights, schedule, position).Index);
        }
    }

    [Fact]
    public void Pick_DividesInFlightByWeight()
    {
        // 6/3 = 2 beats 3/1 = 3 and 5/2 = 2.5.
        int[] weights = [3, 1, 2];
        Assert.Equal(0, LeastConnections.Pick([6, 3, 5], weights, SmoothWeightedRoundRobin.BuildSchedule(weights), 1).Index);
    }

    [Fact]
    public void Pick_EqualTies_RotateInsteadOfFavouringTheFirst()
    {
        Assert.Equal([0, 1, 2, 0, 1, 2], Picks([2, 2, 2], [1, 1, 1], 6));
    }

    [Fact]
    public void Pick_TieOnlyAmongMinimums_AlternatesBetweenThem()
    {
        Assert.Equal([0, 2, 0, 2], Picks([1, 7, 1, 7], [1, 1, 1, 1], 4));
    }

    [Fact]
    public void Pick_Weights5To1_Idle_SplitsTiesFiveToOne_Interleaved()
    {
        var picks = Picks([0, 0], [5, 1], 600);

        Assert.Equal(500, picks.Count(p => p == 0));
        Assert.Equal(100, picks.Count(p => p == 1));
        // Smooth: never more than five A's in a row.
        Assert.DoesNotContain("000000", string.Concat(picks));
    }

    [Fact]
    public void Pick_InFlight1_1_7_HeldFor10000Picks_SplitsTiesExactlyInHalf_NeverPicksTheBusyOne()
    {
        // A rotating start with "first minimum from the start" gave A the turn of C as well: two thirds of the ties.
        var picks = Picks([1, 1, 7], [1, 1, 1], 10_000);

        Assert.Equal(5000, picks.Count(p => p == 0));
        Assert.Equal(5000, picks.Count(p => p == 1));
        Assert.Equal(0, picks.Count(p => p == 2));
    }

    [Fact]
    public void Pick_InFlightHeld_TiedWeights3_1_WithABusyThird_10000Picks_SplitByWeight()
    {
        // A 3/3 = 1 and B 1/1 = 1 tie; C (9/1) is out. The ties go 3:1, as the weights say.
        var picks = Picks([3, 1, 9], [3, 1, 1], 10_000);

        Assert.Equal(7500, picks.Count(p => p == 0));
        Assert.Equal(2500, picks.Count(p => p == 1));
        Assert.Equal(0, picks.Count(p => p == 2));
    }

    [Fact]
    public void Policy_IdleDestinations_SplitsEvenly()
    {
        var policy = new LeastConnectionsPolicy(EffectiveWeights.FileOnly());
        var cluster = new Yarp.ReverseProxy.Model.ClusterState("c");
        var destinations = Destinations.Make(("A", 1), ("B", 1), ("C", 1));

        var counts = Destinations.Count(300, () => policy.PickDestination(new DefaultHttpContext(), cluster, destinations)!);

        Assert.Equal(new Dictionary<string, int> { ["A"] = 100, ["B"] = 100, ["C"] = 100 }, counts);
    }

    [Fact]
    public void Policy_Weights5To1_AtLowLoad_Splits5To1()
    {
        // Each request finishes before the next (in flight stays 0): every pick is a tie.
        var policy = new LeastConnectionsPolicy(EffectiveWeights.FileOnly());
        var cluster = new Yarp.ReverseProxy.Model.ClusterState("c");
        var destinations = Destinations.Make(("A", 5), ("B", 1));

        var counts = Destinations.Count(600, () => policy.PickDestination(new DefaultHttpContext(), cluster, destinations)!);

        Assert.Equal(new Dictionary<string, int> { ["A"] = 500, ["B"] = 100 }, counts);
    }

    [Fact]
    public void Policy_BusyDestination_IsAvoided()
    {
        var policy = new LeastConnectionsPolicy(EffectiveWeights.FileOnly());
        var cluster = new Yarp.ReverseProxy.Model.ClusterState("c");
        var destinations = Destinations.Make(("A", 1), ("B", 1), ("C", 1));
        destinations[0].ConcurrentRequestCount = 10;
        destinations[1].ConcurrentRequestCount = 3;
        destinations[2].ConcurrentRequestCount = 4;

        var picked = policy.PickDestination(new DefaultHttpContext(), cluster, destinations)!;

        Assert.Equal("B", picked.DestinationId);
    }

    [Fact]
    public void AtScale_ReturnsTheDestinationWithFewestInFlightPerWeight()
    {
        // 6/3 = 2 beats 3/1 = 3 and 5/2 = 2.5.
        Assert.Equal(0, LeastConnections.PickAtScale([6, 3, 5], [3, 1, 2], new LeastConnections.Turns(3)));
        Assert.Equal(2, LeastConnections.PickAtScale([5, 3, 1, 4], [1, 1, 1, 1], new LeastConnections.Turns(4)));
    }

    [Fact]
    public void AtScale_EqualTies_RotateInIndexOrder()
    {
        Assert.Equal([0, 1, 2, 0, 1, 2], PicksAtScale([2, 2, 2], [1, 1, 1], 6));
    }

    [Fact]
    public void AtScale_Weights5To1_Idle_SplitsTiesFiveToOne_Interleaved()
    {
        var picks = PicksAtScale([0, 0], [5, 1], 600);

        Assert.Equal(500, picks.Count(p => p == 0));
        Assert.Equal(100, picks.Count(p => p == 1));
        Assert.DoesNotContain("000000", string.Concat(picks));
    }

    [Fact]
    public void AtScale_InFlight1_1_7_Held_SplitsTiesExactlyInHalf_ThenTheIdledOneGetsNoBacklog()
    {
        var turns = new LeastConnections.Turns(3);
        var held = PicksAtScale([1, 1, 7], [1, 1, 1], 10_000, turns);
        Assert.Equal([5000, 5000, 0], [held.Count(p => p == 0), held.Count(p => p == 1), held.Count(p => p == 2)]);

        // C was busy for 10,000 picks: when it ties again it takes its share, not 5,000 turns in a row.
        var after = PicksAtScale([1, 1, 1], [1, 1, 1], 3000, turns);
        Assert.InRange(after.Count(p => p == 2), 1000, 1001);
        Assert.InRange(after.Count(p => p == 0), 999, 1000);
    }

    [Fact]
    public void AtScale_ATurnPastTheLimit_EveryTurnStartsAgain_AsAfterAChange()
    {
        // Two idle equal destinations alternate; the fifth pick would make A's turn 4, the limit here: all start again.
        var turns = new LeastConnections.Turns(2, restartAt: 4);

        var picks = PicksAtScale([0, 0], [1, 1], 10, turns);

        Assert.Equal([0, 1, 0, 1, 0, 0, 1, 0, 1, 0], picks);
    }

    [Fact]
    public void AtScale_InFlightHeld_TiedWeights3_1_WithABusyThird_10000Picks_SplitByWeight()
    {
        var picks = PicksAtScale([3, 1, 9], [3, 1, 1], 10_000);

        Assert.Equal([7500, 2500, 0], [picks.Count(p => p == 0), picks.Count(p => p == 1), picks.Count(p => p == 2)]);
    }

    [Fact]
    public void AtScale_10000Destinations_Idle_1000RandomWeights_PickAllocatesNothing_AndSplitsByWeight()
    {
        var random = new Random(25);
        var weights = Enumerable.Range(0, 10_000).Select(_ => random.Next(1, 1001)).ToArray();
        var inFlight = new int[weights.Length];
        var turns = new LeastConnections.Turns(weights.Length);
        var counts = new int[weights.Length];
        LeastConnections.PickAtScale(inFlight, weights, turns);

        var allocated = Allocations.Fewest(() =>
        {
            for (var i = 0; i < 10_000; i++)
            {
                counts[LeastConnections.PickAtScale(inFlight, weights, turns)]++;
            }
        });

        Assert.Equal(0, allocated);
        Assert.True(counts[Array.IndexOf(weights, weights.Max())] > counts[Array.IndexOf(weights, weights.Min())]);
    }

    private static int[] PicksAtScale(int[] inFlight, int[] weights, int count, LeastConnections.Turns? turns = null)
    {
        turns ??= new LeastConnections.Turns(weights.Length);
        return [.. Enumerable.Range(0, count).Select(_ => LeastConnections.PickAtScale(inFlight, weights, turns))];
    }

    /// <summary>Picks with the in-flight counts held, advancing the position as the policy does.</summary>
    private static int[] Picks(int[] inFlight, int[] weights, int count)
    {
        var schedule = SmoothWeightedRoundRobin.BuildSchedule(weights);
        var picks = new int[count];
        uint position = 0;
        for (var i = 0; i < count; i++)
        {
            var (index, advance) = LeastConnections.Pick(inFlight, weights, schedule, position);
            picks[i] = index;
            position += (uint)advance;
        }

        return picks;
    }
}
