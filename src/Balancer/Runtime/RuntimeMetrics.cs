using Prometheus;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Model;

namespace Balancer.Runtime;

/// <summary>
/// <c>balancer_destination_state</c>: per destination, 0 Active, 1 Draining, 2 Drained, 3 Maintenance; read
/// when Prometheus scrapes. Series of destinations that left the config go with them.
/// </summary>
internal sealed class RuntimeMetrics
{
    private readonly IProxyStateLookup _proxyState;
    private readonly RuntimeOverrides _overrides;
    private readonly Gauge _state;

    // Each destination's child, found by reference: a scrape of thousands of destinations sets values, and
    // looks series up by their labels only when the config's destinations changed.
    private readonly Dictionary<DestinationState, Exported> _exported = new(ReferenceEqualityComparer.Instance);
    private readonly List<(string Cluster, DestinationState Destination)> _visited = [];

    public RuntimeMetrics(Telemetry.BalancerMetricsRegistry metrics, IProxyStateLookup proxyState, RuntimeOverrides overrides)
    {
        _proxyState = proxyState;
        _overrides = overrides;
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
            _visited.Clear();
            var changed = false;
            foreach (var cluster in _proxyState.GetClusters())
            {
                var touched = _overrides.Touches(cluster.ClusterId);
                foreach (var destination in cluster.Destinations.Values)
                {
                    _visited.Add((cluster.ClusterId, destination));
                    if (!_exported.TryGetValue(destination, out var exported))
                    {
                        exported = new Exported(cluster.ClusterId, destination.DestinationId, _state.WithLabels(cluster.ClusterId, destination.DestinationId));
                        _exported[destination] = exported;
                        changed = true;
                    }

                    var mode = touched ? _overrides.ModeOf(cluster.ClusterId, destination.DestinationId) : AdminMode.Active;
                    exported.Child.Set(DestinationRuntimeState.Code(DestinationRuntimeState.Of(mode, destination.ConcurrentRequestCount)));
                }
            }

            if (changed || _visited.Count != _exported.Count)
            {
                Forget();
            }
        }
    }

    /// <summary>Drops the series of destinations that left the config (or were replaced by a new one of the same id).</summary>
    private void Forget()
    {
        var current = new HashSet<DestinationState>(ReferenceEqualityComparer.Instance);
        var ids = new HashSet<(string, string)>();
        foreach (var (cluster, destination) in _visited)
        {
            current.Add(destination);
            ids.Add((cluster, destination.DestinationId));
        }

        foreach (var (destination, exported) in _exported.Where(e => !current.Contains(e.Key)).ToList())
        {
            _exported.Remove(destination);
            if (!ids.Contains((exported.Cluster, exported.Destination)))
            {
                _state.RemoveLabelled(exported.Cluster, exported.Destination);
            }
        }
    }

    private sealed record Exported(string Cluster, string Destination, Gauge.Child Child);
}
