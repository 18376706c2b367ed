using Balancer.Health;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Model;

namespace Balancer.Readiness;

/// <summary>
/// Whether this instance should be sent traffic (<c>GET /readyz</c>), as opposed to whether it is alive
/// (<c>/healthz</c>). It is not while starting, while leaving (a signal was received, or an operator drained
/// it), or while any routed cluster has no destination to send to: a peer that can serve is then the better
/// holder of the virtual address.
/// </summary>
public sealed class InstanceReadiness(IProxyStateLookup proxy, IHostApplicationLifetime lifetime)
{
    private readonly Lock _lock = new();
    private volatile string? _leaving;
    private volatile bool _drained;

    /// <summary>Raised after <see cref="SendingAway"/> changed; handlers read the state again, as changes may race.</summary>
    internal event Action? SendingAwayChanged;

    /// <summary>True once an operator drained the instance through the management API.</summary>
    public bool Drained => _drained;

    /// <summary>True while leaving or drained: clients should move to a peer, so kept-alive connections are ended.</summary>
    public bool SendingAway => _leaving is not null || _drained;

    /// <summary>Never ready again: the process is on its way out.</summary>
    public void Leave(string reason) => Change(() => _leaving ??= reason);

    /// <summary>Maintenance: not ready, still serving whatever arrives, until <see cref="Enable"/>.</summary>
    public void Drain() => Change(() => _drained = true);

    public void Enable() => Change(() => _drained = false);

    /// <summary>Null when ready; otherwise a short reason for the operator.</summary>
    public string? NotReadyReason()
    {
        if (_leaving is { } leaving)
        {
            return leaving;
        }

        if (_drained)
        {
            return "drained by the operator (POST /api/instance/enable to undo)";
        }

        if (!lifetime.ApplicationStarted.IsCancellationRequested)
        {
            return "starting: listeners not bound yet";
        }

        foreach (var route in proxy.GetRoutes())
        {
            var clusterId = route.Config.ClusterId;
            if (clusterId is null)
            {
                // A route without a cluster is answered by its own middleware, not by a destination.
                continue;
            }

            if (route.Cluster is not { } cluster)
            {
                return $"route '{route.Config.RouteId}': cluster '{clusterId}' does not exist";
            }

            if (!HasAvailableDestination(cluster))
            {
                return $"cluster '{clusterId}': no available destination";
            }
        }

        return null;
    }

    private void Change(Action change)
    {
        bool before, after;
        lock (_lock)
        {
            before = SendingAway;
            change();
            after = SendingAway;
        }

        if (before != after)
        {
            SendingAwayChanged?.Invoke();
        }
    }

    /// <summary>
    /// YARP's available set, minus destinations known to be down: with its default HealthyOrPanic policy the
    /// set holds every destination when all are unhealthy, which is exactly when this instance cannot serve.
    /// </summary>
    private static bool HasAvailableDestination(ClusterState cluster)
    {
        foreach (var destination in cluster.DestinationsState.AvailableDestinations)
        {
            if (DestinationHealthView.Of(destination) != DestinationHealthView.Down)
            {
                return true;
            }
        }

        return false;
    }
}
