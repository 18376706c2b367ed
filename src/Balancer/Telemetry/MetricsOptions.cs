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
}
