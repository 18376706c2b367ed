using Balancer.Runtime;
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
/// <para>
/// An update of the available list that comes without an announcement of what changed (<see cref="AvailabilityChanges"/>)
/// marks the cluster's next computation as one over every destination: whatever the caller changed is then read, even
/// when YARP drops this call because another is already waiting and that one was announced.
/// </para>
/// </remarks>
internal sealed class PreparingDestinationsUpdater(IClusterDestinationsUpdater inner, PolicySnapshots snapshots, AvailabilityChanges? changes = null) : IClusterDestinationsUpdater
{
    public void UpdateAllDestinations(ClusterState cluster)
    {
        inner.UpdateAllDestinations(cluster);
        snapshots.Prepare(cluster);
    }

    public void UpdateAvailableDestinations(ClusterState cluster)
    {
        if (changes is not null && !changes.IsAnnouncing)
        {
            changes.Unannounced(cluster.ClusterId);
        }

        inner.UpdateAvailableDestinations(cluster);
        snapshots.Prepare(cluster);
    }
}
