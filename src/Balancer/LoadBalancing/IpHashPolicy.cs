using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// Sends each client IP to the same destination by weighted rendezvous hashing over the available
/// destinations (see <see cref="RendezvousHash"/> for why rendezvous), or, above
/// <see cref="MaglevTable.MinDestinations"/> destinations, through a weighted Maglev table.
/// </summary>
/// <remarks>
/// The first table of a cluster is built before its first pick (<see cref="ClusterPolicyState.FirstTable"/>),
/// so no client moves once it exists. After each change a new table is built off the request path
/// (<see cref="ClusterPolicyState.RequestTable"/>); until it is ready, a client keeps the destination the
/// previous table gives it while that destination is still available; only clients whose destination left
/// are placed by rendezvous hashing, which is exact and needs nothing built but costs O(N) per pick.
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
        if (set.UsesTable)
        {
            var built = state.LatestTable ?? state.FirstTable(set);
            if (!ReferenceEquals(built?.Set, set))
            {
                state.RequestTable(set);
            }

            if (built is not null)
            {
                var destination = built.Set.Destinations[built.Table.Lookup(key)];
                if (ReferenceEquals(built.Set, set) || set.Contains(destination))
                {
                    return destination;
                }
            }
        }

        return set.Destinations[RendezvousHash.Pick(key, set.IdHashes, set.Weights)];
    }

    /// <summary>
    /// Readies <paramref name="cluster"/>'s snapshot and lookup table for its current destinations before a request
    /// needs them: the first table is built now, a newer one on the thread pool.
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
        if (!set.UsesTable)
        {
            return;
        }

        if (state.FirstTable(set) is { } built && !ReferenceEquals(built.Set, set))
        {
            state.RequestTable(set);
        }
    }
}
