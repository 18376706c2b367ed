namespace Balancer.Telemetry;

/// <summary>The <c>Balancer:Metrics</c> section.</summary>
public sealed class MetricsOptions
{
    public const string EnabledKey = "Balancer:Metrics:Enabled";

    /// <summary>
    /// Whether every proxied request is counted and timed at its destination (requests by code, duration,
    /// bytes: the series of <see cref="ProxyMetrics"/>, and the traffic figures of <c>/status</c>). Off leaves
    /// the series that cost nothing per request: up/down, in flight, policy, reloads, retries and the
    /// process's own. For setups that scrape nothing, and to measure what the counting costs. Read at start-up.
    /// </summary>
    public bool Enabled { get; set; } = true;

    public const string PerDestinationHistogramsKey = "Balancer:Metrics:PerDestinationHistograms";

    /// <summary>
    /// Whether request durations are kept per destination (<c>balancer_destination_request_duration_seconds</c>,
    /// 18 series each) or only per cluster (<c>balancer_cluster_request_duration_seconds</c>): <c>true</c> for every
    /// cluster, <c>false</c> for none, unset (the default) per destination in clusters of at most
    /// <see cref="PerDestinationHistogramsMaxDestinations"/> destinations and per cluster in larger ones, where the
    /// per-destination buckets would be most of <c>/metrics</c> and of what a scrape costs. The per-destination
    /// counters stay either way. Read at start-up.
    /// </summary>
    public bool? PerDestinationHistograms { get; set; }

    public const string PerDestinationHistogramsMaxDestinationsKey = "Balancer:Metrics:PerDestinationHistogramsMaxDestinations";

    /// <summary>
    /// With <see cref="PerDestinationHistograms"/> unset, the largest cluster whose request durations are kept per
    /// destination; a cluster that grows past it (or shrinks back) switches at the next scrape. Read at start-up.
    /// </summary>
    public int PerDestinationHistogramsMaxDestinations { get; set; } = DefaultPerDestinationHistogramsMaxDestinations;

    public const int DefaultPerDestinationHistogramsMaxDestinations = 500;

    /// <summary>Whether a cluster of <paramref name="destinations"/> destinations keeps its request durations per cluster.</summary>
    public bool DurationsPerCluster(int destinations) =>
        PerDestinationHistograms is { } fixedChoice ? !fixedChoice : destinations > PerDestinationHistogramsMaxDestinations;
}
