using Balancer.Telemetry;

namespace Balancer.Runtime;

/// <summary>
/// <c>balancer_destination_state</c>: per destination, 0 Active, 1 Draining, 2 Drained, 3 Maintenance; read
/// when Prometheus scrapes, written with the other per-destination gauges by <see cref="ProxyMetrics"/>.
/// </summary>
internal sealed class RuntimeMetrics
{
    public RuntimeMetrics(ProxyMetrics metrics, RuntimeOverrides overrides) =>
        metrics.AddScrapedGauge(
            "balancer_destination_state",
            "Runtime state set by operators: 0 Active, 1 Draining (no new requests, some in flight), 2 Drained, 3 Maintenance (drained, not probed).",
            // Asked once per cluster: in a cluster no operator has touched, every destination is Active without a lookup.
            cluster => overrides.Touches(cluster.ClusterId)
                ? destination => DestinationRuntimeState.Code(DestinationRuntimeState.Of(overrides.ModeOf(cluster.ClusterId, destination.DestinationId), destination.ConcurrentRequestCount))
                : static _ => DestinationRuntimeState.Code(DestinationRuntimeState.Active));
}
