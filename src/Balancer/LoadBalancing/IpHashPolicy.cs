using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// Sends each client IP to the same destination by weighted rendezvous hashing over the available
/// destinations (see <see cref="RendezvousHash"/> for why rendezvous).
/// </summary>
internal sealed class IpHashPolicy(ClientIpResolver clientIp, EffectiveWeights weights) : ILoadBalancingPolicy
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

        // No slow start: a ramp would move clients twice, away and back, for no gain.
        var set = _clusters.For(cluster).SetFor(cluster, availableDestinations, weights, slowStart: false);
        var address = clientIp.Resolve(context);
        var key = address is null ? 0 : RendezvousHash.HashAddress(address);
        return set.Destinations[RendezvousHash.Pick(key, set.IdHashes, set.Weights)];
    }
}
