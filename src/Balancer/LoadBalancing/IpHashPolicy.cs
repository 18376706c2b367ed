using System.Buffers;
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
/// rendezvous hashing over the available set (from the table's hashes and weights), which is exact and needs nothing
/// built but costs O(N) per pick. The snapshot of the available set then holds no hash or weight of its own.
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
        var set = state.Enter(cluster, availableDestinations, weights, DestinationSet.PickKind.IpHash);
        try
        {
            var address = clientIp.Resolve(context);
            var key = address is null ? 0 : RendezvousHash.HashAddress(address);
            if (set.Configured is not { } configured)
            {
                return set.Destinations[RendezvousHash.Pick(key, set.IdHashes, set.Weights)];
            }

            var table = state.TableFor(cluster, Current(cluster, configured), weights);
            var available = state.Availability(table, set);
            var index = table.Lookup(key, available);
            if (index < 0)
            {
                // The walk gave up: the exact rendezvous pick over the available ones, from the table's hashes and weights.
                index = RendezvousHash.Pick(key, table.IdHashes, table.Weights, available.Bits);
            }

            return index >= 0 ? table.Destinations[index] : Unlisted(cluster, set.Destinations, key);
        }
        finally
        {
            ClusterPolicyState.Exit(set);
        }
    }

    /// <summary>
    /// Rendezvous hashing over destinations none of which the table holds: a reload replaced every available one and
    /// its table is still being built. Hashes and weighs each on every pick until then, which nothing else does.
    /// </summary>
    private DestinationState Unlisted(ClusterState cluster, ReadOnlySpan<DestinationState> available, ulong key)
    {
        var hashes = ArrayPool<ulong>.Shared.Rent(available.Length);
        var weighed = ArrayPool<int>.Shared.Rent(available.Length);
        try
        {
            for (var i = 0; i < available.Length; i++)
            {
                hashes[i] = RendezvousHash.HashId(available[i].DestinationId);
                weighed[i] = weights.WeightOf(cluster.ClusterId, available[i]);
            }

            return available[RendezvousHash.Pick(key, hashes.AsSpan(0, available.Length), weighed.AsSpan(0, available.Length))];
        }
        finally
        {
            ArrayPool<ulong>.Shared.Return(hashes);
            ArrayPool<int>.Shared.Return(weighed);
        }
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
        var set = state.Enter(cluster, available, weights, DestinationSet.PickKind.IpHash);
        try
        {
            if (set.Configured is { } configured)
            {
                state.Availability(state.TableFor(cluster, Current(cluster, configured), weights), set);
            }
        }
        finally
        {
            ClusterPolicyState.Exit(set);
        }
    }

    /// <summary>
    /// The cluster's list of all destinations now, which the table must describe (a snapshot kept while its available
    /// list stayed the same may have been made beside an older one); the snapshot's own when the cluster has none.
    /// </summary>
    private static IReadOnlyList<DestinationState> Current(ClusterState cluster, IReadOnlyList<DestinationState> configured) =>
        cluster.DestinationsState?.AllDestinations is { Count: > 0 } all ? all : configured;
}
