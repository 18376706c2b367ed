using Balancer.LoadBalancing;
using Balancer.Runtime;
using Balancer.Tests.LoadBalancing;
using Microsoft.Extensions.Time.Testing;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Model;

namespace Balancer.Tests.Runtime;

/// <summary>Slow start on a fake clock: the split over time as the recovered destination's weight ramps.</summary>
public sealed class SlowStartTests
{
    private readonly FakeTimeProvider _time = new();
    private readonly RuntimeOverrides _overrides = new(null);

    [Fact]
    public void StepAt_MovesIn18EqualSteps_AndEndsAtTheDuration()
    {
        var duration = TimeSpan.FromSeconds(18);

        Assert.Equal((0, TimeSpan.FromSeconds(1)), SlowStart.StepAt(TimeSpan.Zero, duration));
        Assert.Equal((0, TimeSpan.FromMilliseconds(1)), SlowStart.StepAt(TimeSpan.FromMilliseconds(999), duration));
        Assert.Equal((9, TimeSpan.FromSeconds(1)), SlowStart.StepAt(TimeSpan.FromSeconds(9), duration));
        Assert.Equal((17, TimeSpan.FromSeconds(0.5)), SlowStart.StepAt(TimeSpan.FromSeconds(17.5), duration));
        Assert.Equal((SlowStart.Steps, Timeout.InfiniteTimeSpan), SlowStart.StepAt(duration, duration));
    }

    [Theory]
    [InlineData("RoundRobin")]
    [InlineData("LeastConnections")]
    public void Ramp_ATenthAtFirst_HalfwayAt55Percent_FullAtTheEnd_MeasuredInTheSplit(string policyName)
    {
        var weights = new EffectiveWeights(_overrides, _time);
        Yarp.ReverseProxy.LoadBalancing.ILoadBalancingPolicy policy = policyName == "RoundRobin" ? new RoundRobinPolicy(weights) : new LeastConnectionsPolicy(weights);
        var cluster = Cluster("00:00:18");
        var destinations = Destinations.Make(("A", 1), ("B", 1), ("C", 1));
        DestinationState Pick() => policy.PickDestination(new DefaultHttpContext(), cluster, destinations)!;

        Assert.Equal(new Dictionary<string, int> { ["A"] = 100, ["B"] = 100, ["C"] = 100 }, Destinations.Count(300, Pick));

        _overrides.StartRamp("c", "C", _time.GetTimestamp());
        // 20:20:2 in twentieths, a period of 42.
        Assert.Equal(new Dictionary<string, int> { ["A"] = 200, ["B"] = 200, ["C"] = 20 }, Destinations.Count(420, Pick));
        Assert.Equal(0.1, weights.RampOf(cluster, destinations[2])!.Value.Fraction);

        _time.Advance(TimeSpan.FromSeconds(9));
        // 20:20:11, a period of 51.
        Assert.Equal(new Dictionary<string, int> { ["A"] = 200, ["B"] = 200, ["C"] = 110 }, Destinations.Count(510, Pick));
        Assert.Equal(0.55, weights.RampOf(cluster, destinations[2])!.Value.Fraction);

        _time.Advance(TimeSpan.FromSeconds(8.5));
        // 20:20:19.
        Assert.Equal(new Dictionary<string, int> { ["A"] = 200, ["B"] = 200, ["C"] = 190 }, Destinations.Count(590, Pick));

        _time.Advance(TimeSpan.FromSeconds(0.5));
        Assert.Null(weights.RampOf(cluster, destinations[2]));
        Assert.Equal(new Dictionary<string, int> { ["A"] = 100, ["B"] = 100, ["C"] = 100 }, Destinations.Count(300, Pick));
    }

    [Fact]
    public void Ramp_WithAnOverride_RampsTheOverriddenWeight()
    {
        var weights = new EffectiveWeights(_overrides, _time);
        var policy = new RoundRobinPolicy(weights);
        var cluster = Cluster("00:00:18");
        var destinations = Destinations.Make(("A", 1), ("B", 1), ("C", 1));
        _overrides.Update("c", "C", _ => new DestinationOverride(AdminMode.Active, 10, _time.GetUtcNow(), "test"));
        _overrides.StartRamp("c", "C", _time.GetTimestamp());

        // C: 10 x 2/20 = 1, against 1 and 1.
        Assert.Equal(new Dictionary<string, int> { ["A"] = 100, ["B"] = 100, ["C"] = 100 },
            Destinations.Count(300, () => policy.PickDestination(new DefaultHttpContext(), cluster, destinations)!));
    }

    [Fact]
    public void NoSlowStartConfigured_NoRamp()
    {
        var weights = new EffectiveWeights(_overrides, _time);
        var policy = new RoundRobinPolicy(weights);
        var cluster = Cluster(null);
        var destinations = Destinations.Make(("A", 1), ("B", 1), ("C", 1));
        _overrides.StartRamp("c", "C", _time.GetTimestamp());

        Assert.Null(weights.RampOf(cluster, destinations[2]));
        Assert.Equal(new Dictionary<string, int> { ["A"] = 100, ["B"] = 100, ["C"] = 100 },
            Destinations.Count(300, () => policy.PickDestination(new DefaultHttpContext(), cluster, destinations)!));
    }

    [Fact]
    public void Generation_MovesWithWeightsAndRamps_NotWithAModeAlone()
    {
        var now = _time.GetUtcNow();
        var start = _overrides.Generation;
        _overrides.Update("c", "A", o => new DestinationOverride(AdminMode.Drain, o?.Weight, now, "test"));
        _overrides.Update("c", "A", o => new DestinationOverride(AdminMode.Active, o?.Weight, now, "test"));
        Assert.Equal(start, _overrides.Generation);

        _overrides.Update("c", "A", o => new DestinationOverride(o?.Mode ?? AdminMode.Active, 5, now, "test"));
        Assert.Equal(start + 1, _overrides.Generation);
        _overrides.Update("c", "A", o => new DestinationOverride(AdminMode.Maintenance, o?.Weight, now, "test"));
        Assert.Equal(start + 1, _overrides.Generation);
        _overrides.RemoveWhere((_, _) => true);
        Assert.Equal(start + 2, _overrides.Generation);
        _overrides.StartRamp("c", "A", _time.GetTimestamp());
        Assert.Equal(start + 3, _overrides.Generation);
    }

    [Fact]
    public void WeightAdjusted_NamesOverriddenWeightsAndRampsInProgress_NotDrainsOrRampsLongOver()
    {
        var now = _time.GetUtcNow();
        _overrides.Update("c", "A", _ => new DestinationOverride(AdminMode.Drain, null, now, "test"));
        _overrides.Update("other", "B", _ => new DestinationOverride(AdminMode.Active, 3, now, "test"));
        _overrides.StartRamp("c", "C", _time.GetTimestamp());
        _time.Advance(SlowStart.Longest + TimeSpan.FromSeconds(1));
        var longest = (long)(SlowStart.Longest.TotalSeconds * _time.TimestampFrequency);
        Assert.Null(_overrides.WeightAdjusted("c", _time.GetTimestamp() - longest));

        _overrides.Update("c", "D", _ => new DestinationOverride(AdminMode.Active, 7, now, "test"));
        _overrides.StartRamp("C", "E", _time.GetTimestamp());
        Assert.Equal(["D", "E"], _overrides.WeightAdjusted("c", _time.GetTimestamp() - longest)!.Order(StringComparer.Ordinal));
    }

    private static ClusterState Cluster(string? slowStart)
    {
        var config = new ClusterConfig
        {
            ClusterId = "c",
            Metadata = slowStart is null ? null : new Dictionary<string, string> { [SlowStart.MetadataKey] = slowStart },
        };
        return new ClusterState("c", new ClusterModel(config, new HttpMessageInvoker(new HttpClientHandler())));
    }
}
