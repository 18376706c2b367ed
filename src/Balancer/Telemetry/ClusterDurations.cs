using Prometheus;

namespace Balancer.Telemetry;

/// <summary>
/// Where a cluster's request durations go: each destination's own histogram, or, in a cluster too large for
/// per-destination buckets (<see cref="MetricsOptions.PerDestinationHistograms"/>), the cluster's one. A
/// destination's metrics and a switch between the two take this object's lock, so that no destination keeps a
/// per-destination series in a cluster that has switched to its cluster histogram.
/// </summary>
internal sealed class ClusterDurations(string cluster)
{
    private volatile Histogram.Child? _shared;

    public string Cluster { get; } = cluster;

    /// <summary>The cluster's histogram while the cluster's durations are kept per cluster, else null.</summary>
    public Histogram.Child? Shared
    {
        get => _shared;
        set => _shared = value;
    }

    public bool PerCluster => _shared is not null;
}
