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
    /// 18 series each) or only per cluster (<c>balancer_cluster_request_duration_seconds</c>). Off is for clusters
    /// of hundreds or thousands of destinations, where the per-destination buckets are most of <c>/metrics</c>;
    /// the per-destination counters stay either way. Read at start-up.
    /// </summary>
    public bool PerDestinationHistograms { get; set; } = true;
}
