using Prometheus;

namespace Balancer.Telemetry;

/// <summary>
/// The counters of rare per-destination events (retries, health changes). Their labels are all known in
/// advance, so <see cref="ProxyMetrics"/> creates every destination's series at 0 when the destination
/// appears: a dashboard then shows "0 retries" from start-up instead of no data until the first one.
/// </summary>
internal static class DestinationEvents
{
    /// <summary>The <c>reason</c> values of <c>balancer_retries_total</c>: the transport failures a retry follows.</summary>
    public static readonly string[] RetryReasons = ["refused", "connect", "reset", "timeout", "circuit_open", "marked_down"];

    /// <summary>The <c>to</c> values of <c>balancer_destination_health_transitions_total</c>.</summary>
    public static readonly string[] HealthStates = ["up", "down", "unknown"];

    /// <summary>The same collector on every call with the same factory, as prometheus-net returns existing metrics by name.</summary>
    public static Counter Retries(IMetricFactory factory) => factory.CreateCounter(
        "balancer_retries_total",
        "Requests sent again to another destination after a transport failure, by the destination that failed and why.",
        new CounterConfiguration { LabelNames = ["cluster", "destination", "reason"] });

    public static Counter HealthTransitions(IMetricFactory factory) => factory.CreateCounter(
        "balancer_destination_health_transitions_total",
        "Changes of a destination's health as operators see it (up, down, unknown).",
        new CounterConfiguration { LabelNames = ["cluster", "destination", "to"] });
}
