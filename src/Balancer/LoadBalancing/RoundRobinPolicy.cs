using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>Smooth weighted round robin over the available destinations, by effective weight.</summary>
internal sealed class RoundRobinPolicy(EffectiveWeights weights) : ILoadBalancingPolicy
{
    private readonly ClusterPolicyState.Table _clusters = new();

    public string Name => PolicyNames.RoundRobin;

    internal ClusterPolicyState.Table Clusters => _clusters;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations)
    {
        if (availableDestinations.Count == 0)
        {
            return null;
        }

        var state = _clusters.For(cluster);
        var set = state.SetFor(cluster, availableDestinations, weights, slowStart: true);
        var schedule = set.Schedule;
        return set.Destinations[schedule[(int)(state.Next() % (uint)schedule.Length)]];
    }
}
