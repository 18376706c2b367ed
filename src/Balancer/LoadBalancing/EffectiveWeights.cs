using System.Runtime.CompilerServices;
using Balancer.Runtime;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// The one place that turns a destination's configured weight into the weight the policies use: the file's
/// <c>Metadata.Weight</c>, replaced by an operator's override, scaled by the slow-start ramp. Policies read
/// weights only through <see cref="DestinationSet"/>, which asks this class when it is built.
/// </summary>
internal sealed class EffectiveWeights(RuntimeOverrides overrides, TimeProvider time)
{
    /// <summary>No runtime state and the system clock: the file's weights as they are (for tests and tools).</summary>
    public static EffectiveWeights FileOnly() => new(new RuntimeOverrides(null), TimeProvider.System);

    /// <summary>Changes whenever an override or a ramp changes; a snapshot built at another value is stale.</summary>
    public long Generation => overrides.Generation;

    public TimeProvider Time => time;

    /// <summary>The file weight, or the operator's override of it.</summary>
    public int WeightOf(string clusterId, DestinationState destination) =>
        overrides.Find(clusterId, destination.DestinationId)?.Weight ?? DestinationWeight.Of(destination.Model.Config);

    /// <summary>
    /// Fills <paramref name="weights"/> for <paramref name="destinations"/>. With <paramref name="slowStart"/>, every
    /// weight is counted in twentieths (<see cref="SlowStart.Scale"/>) and a ramping destination gets its fraction;
    /// returns the timestamp at which a ramp takes its next step (<see cref="long.MaxValue"/>: never).
    /// </summary>
    [MethodImpl(PerChangeCode.Optimized)]
    public long Fill(ClusterState cluster, ReadOnlySpan<DestinationState> destinations, Span<int> weights, bool slowStart)
    {
        var expires = long.MaxValue;
        var now = time.GetTimestamp();
        var adjusted = overrides.WeightAdjusted(cluster.ClusterId, now - LongestRampTimestamp);
        for (var i = 0; i < destinations.Length; i++)
        {
            var destination = destinations[i];
            if (adjusted is null || !adjusted.Contains(destination.DestinationId))
            {
                // No weight override and no ramp: the file's weight, at full strength.
                var file = DestinationWeight.Of(destination.Model.Config);
                weights[i] = slowStart ? SlowStart.ScaledWeight(file, SlowStart.Steps) : file;
                continue;
            }

            var weight = WeightOf(cluster.ClusterId, destination);
            if (!slowStart)
            {
                weights[i] = weight;
                continue;
            }

            var (step, untilNext) = RampAt(cluster, destination, now);
            weights[i] = SlowStart.ScaledWeight(weight, step);
            if (untilNext != Timeout.InfiniteTimeSpan)
            {
                var at = now + (long)Math.Ceiling(untilNext.Ticks * (double)time.TimestampFrequency / TimeSpan.TicksPerSecond);
                expires = Math.Min(expires, at);
            }
        }

        return expires;
    }

    /// <summary>The longest ramp there can be, in timestamp units: a ramp started longer ago has ended.</summary>
    private long LongestRampTimestamp => (long)(SlowStart.Longest.TotalSeconds * time.TimestampFrequency);

    /// <summary>
    /// The slow-start ramp of a destination now, for the status API: the fraction of its weight it gets (0.1
    /// to 1) and when the ramp ends; null when it is not ramping.
    /// </summary>
    public (double Fraction, DateTimeOffset Until)? RampOf(ClusterState cluster, DestinationState destination)
    {
        var now = time.GetTimestamp();
        var (step, _) = RampAt(cluster, destination, now);
        if (step == SlowStart.Steps
            || overrides.RampStart(cluster.ClusterId, destination.DestinationId) is not { } start
            || SlowStart.DurationOf(destination, cluster.Model) is not { } duration)
        {
            return null;
        }

        var until = time.GetUtcNow() + (duration - time.GetElapsedTime(start, now));
        return ((2 + step) / (double)SlowStart.Scale, until);
    }

    private (int Step, TimeSpan UntilNext) RampAt(ClusterState cluster, DestinationState destination, long now)
    {
        if (overrides.RampStart(cluster.ClusterId, destination.DestinationId) is not { } start
            || SlowStart.DurationOf(destination, cluster.Model) is not { } duration)
        {
            return (SlowStart.Steps, Timeout.InfiniteTimeSpan);
        }

        return SlowStart.StepAt(time.GetElapsedTime(start, now), duration);
    }
}
