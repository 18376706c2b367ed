using Prometheus;
using Yarp.ReverseProxy;

namespace Balancer.Runtime;

/// <summary>
/// <c>balancer_destination_state</c>: per destination, 0 Active, 1 Draining, 2 Drained, 3 Maintenance; read
/// when Prometheus scrapes. Series of destinations that left the config go with them.
/// </summary>
internal sealed class RuntimeMetrics
{
    private readonly IProxyStateLookup _proxyState;
    private readonly DestinationRuntimeViews _views;
    private readonly Gauge _state;
    private readonly HashSet<(string, string)> _exported = [];

    public RuntimeMetrics(Telemetry.BalancerMetricsRegistry metrics, IProxyStateLookup proxyState, DestinationRuntimeViews views)
    {
        _proxyState = proxyState;
        _views = views;
        _state = metrics.Factory.CreateGauge(
            "balancer_destination_state",
            "Runtime state set by operators: 0 Active, 1 Draining (no new requests, some in flight), 2 Drained, 3 Maintenance (drained, not probed).",
            new GaugeConfiguration { LabelNames = ["cluster", "destination"] });
        metrics.Registry.AddBeforeCollectCallback(Refresh);
    }

    private void Refresh()
    {
        lock (_exported)
        {
            var seen = new HashSet<(string, string)>();
            foreach (var cluster in _proxyState.GetClusters())
            {
                foreach (var destination in cluster.Destinations.Values)
                {
                    seen.Add((cluster.ClusterId, destination.DestinationId));
                    var state = _views.Of(cluster, destination).State;
                    _state.WithLabels(cluster.ClusterId, destination.DestinationId).Set(DestinationRuntimeState.Code(state));
                }
            }

            foreach (var gone in _exported.Except(seen).ToList())
            {
                _state.RemoveLabelled(gone.Item1, gone.Item2);
            }

            _exported.Clear();
            _exported.UnionWith(seen);
        }
    }
}
