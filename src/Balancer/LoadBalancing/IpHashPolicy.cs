using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// Sends each client IP to the same destination by weighted rendezvous hashing over the available
/// destinations (see <see cref="RendezvousHash"/> for why rendezvous), or, for a cluster of more than
/// <see cref="MaglevTable.MinDestinations"/> configured destinations, through a weighted Maglev table over all of them.
/// </summary>
/// <remarks>
/// The table (<see cref="ConfiguredTable"/>) is built from the config, not from the available set: the first before
/// the cluster's first pick, later ones off the request path after a reload or weight override that changed the
/// destinations or their weights. A health or admin change builds nothing: a client whose slot's owner is out walks
/// on to an available one, and past <see cref="ConfiguredTable.MaxWalk"/> slots (most of the cluster out) is placed by
/// rendezvous hashing over the available set, which is exact and needs nothing built but costs O(N) per pick.
/// Which of the two structures a cluster uses depends on its configured size, so health never switches it.
/// </remarks>
internal sealed class IpHashPolicy(ClientIpResolver clientIp, EffectiveWeights weights) : ILoadBalancingPolicy, IPreparingPolicy
{
    private readonly ClusterPolicyState.Table _clusters = new();

    public string Name => PolicyNames.IpHash;

    internal ClusterPolicyState.Table Clusters => _clusters;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations)
    {
        if (availableDestinations.Count == 0)
        {
            return null;
        }

        var state = _clusters.For(cluster);
        var set = state.SetFor(cluster, availableDestinations, weights, DestinationSet.PickKind.IpHash);
        var address = clientIp.Resolve(context);
        var key = address is null ? 0 : RendezvousHash.HashAddress(address);
        if (Configured(cluster) is { } all)
        {
            var table = state.TableFor(cluster, all, weights);
            var index = table.Lookup(key, state.Availability(table, set));
            if (index >= 0)
            {
                return table.Destinations[index];
            }
        }

        return set.Destinations[RendezvousHash.Pick(key, set.IdHashes, set.Weights)];
    }

    /// <summary>
    /// Readies <paramref name="cluster"/>'s snapshot, table and availability for its current destinations before a
    /// request needs them: the first table is built now, a newer one on the thread pool.
    /// </summary>
    public void Prepare(ClusterState cluster)
    {
        var available = cluster.DestinationsState.AvailableDestinations;
        if (available.Count < 2)
        {
            return;
        }

        var state = _clusters.For(cluster);
        var set = state.SetFor(cluster, available, weights, DestinationSet.PickKind.IpHash);
        if (Configured(cluster) is { } all)
        {
            state.Availability(state.TableFor(cluster, all, weights), set);
        }
    }

    /// <summary>The cluster's configured destinations when there are enough of them for a table, else null.</summary>
    private static IReadOnlyList<DestinationState>? Configured(ClusterState cluster) =>
        cluster.DestinationsState?.AllDestinations is { Count: > MaglevTable.MinDestinations } all ? all : null;
}
