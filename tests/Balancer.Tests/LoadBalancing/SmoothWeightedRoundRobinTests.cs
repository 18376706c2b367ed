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
    public void RoundRobin_MembershipChange_RebuildsForNewSet()
    {
        var policy = new RoundRobinPolicy(EffectiveWeights.FileOnly());
        var cluster = new Yarp.ReverseProxy.Model.ClusterState("c");
        var all = Destinations.Make(("A", 1), ("B", 1), ("C", 1));
        var withoutB = new[] { all[0], all[2] };

        var counts = Destinations.Count(100, () => policy.PickDestination(new DefaultHttpContext(), cluster, withoutB)!);

        Assert.Equal(new Dictionary<string, int> { ["A"] = 50, ["C"] = 50 }, counts);
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
