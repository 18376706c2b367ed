using Balancer.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace Balancer.Runtime;

/// <summary>A destination's runtime state as the status API and the runtime API show it.</summary>
/// <param name="State"><c>Active</c>, <c>Draining</c>, <c>Drained</c> or <c>Maintenance</c>.</param>
/// <param name="FileWeight">The weight the config file gives it.</param>
/// <param name="WeightOverride">The operator's weight, if one is set.</param>
/// <param name="EffectiveWeight">The weight in force now: the override or file weight, times the slow-start fraction.</param>
/// <param name="SlowStart">The ramp in progress, if any.</param>
/// <param name="Changed">When an operator last changed it, and who (null without an override).</param>
public sealed record DestinationRuntime(
    string State,
    int FileWeight,
    int? WeightOverride,
    double EffectiveWeight,
    SlowStartStatus? SlowStart,
    RuntimeChange? Changed);

/// <summary>A slow-start ramp: the fraction of its weight the destination gets now, and when it reaches all of it.</summary>
public sealed record SlowStartStatus(double Fraction, DateTimeOffset Until);

/// <summary>The last operator change of a destination.</summary>
public sealed record RuntimeChange(DateTimeOffset Time, string By);

internal sealed class DestinationRuntimeViews(RuntimeOverrides overrides, EffectiveWeights weights)
{
    public DestinationRuntime Of(ClusterState cluster, DestinationState destination)
    {
        var entry = overrides.Find(cluster.ClusterId, destination.DestinationId);
        var fileWeight = DestinationWeight.Of(destination.Model.Config);
        var ramp = weights.RampOf(cluster, destination);
        var weight = entry?.Weight ?? fileWeight;
        return new DestinationRuntime(
            DestinationRuntimeState.Of(entry?.Mode ?? AdminMode.Active, destination.ConcurrentRequestCount),
            fileWeight,
            entry?.Weight,
            ramp is { } r ? Math.Round(weight * r.Fraction, 2) : weight,
            ramp is { } s ? new SlowStartStatus(s.Fraction, s.Until) : null,
            entry is null ? null : new RuntimeChange(entry.Changed, entry.ChangedBy));
    }
}
