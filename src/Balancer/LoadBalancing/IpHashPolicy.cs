using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// Sends each client IP to the same destination by weighted rendezvous hashing over the available
/// destinations (see <see cref="RendezvousHash"/> for why rendezvous).
/// </summary>
internal sealed class IpHashPolicy(ClientIpResolver clientIp) : ILoadBalancingPolicy
{
    private readonly ClusterPolicyState.Table _clusters = new();

    public string Name => PolicyNames.IpHash;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations)
    {
        if (availableDestinations.Count == 0)
        {
            return null;
        }

        var set = _clusters.For(cluster).SetFor(availableDestinations);
        var address = clientIp.Resolve(context);
        var key = address is null ? 0 : RendezvousHash.HashAddress(address);
        return set.Destinations[RendezvousHash.Pick(key, set.IdHashes, set.Weights)];
    }
}
