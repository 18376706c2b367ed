using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// Wraps YARP's updater of a cluster's destination lists so that the cluster's policy snapshot is rebuilt right after
/// its available list is replaced, by whoever replaced it: YARP applying a reloaded config, a health change, the
/// runtime API.
/// </summary>
/// <remarks>
/// Without it, a config reload left the snapshot to the first request after it: at 10,000 destinations with every
/// weight changed, that request weighed every destination again and built the round-robin order on a thread-pool
/// thread (tens of milliseconds on the loaded CPU the proxy is pinned to), and the requests queued behind it waited.
/// </remarks>
internal sealed class PreparingDestinationsUpdater(IClusterDestinationsUpdater inner, PolicySnapshots snapshots) : IClusterDestinationsUpdater
{
    public void UpdateAllDestinations(ClusterState cluster)
    {
        inner.UpdateAllDestinations(cluster);
        snapshots.Prepare(cluster);
    }

    public void UpdateAvailableDestinations(ClusterState cluster)
    {
        inner.UpdateAvailableDestinations(cluster);
        snapshots.Prepare(cluster);
    }
}
