using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// Smooth weighted round robin over the available destinations, by effective weight: one unrolled period of
/// NGINX's order walked with an atomic counter while the period is short, earliest deadline first otherwise
/// (see <see cref="DestinationSet"/>).
/// </summary>
internal sealed class RoundRobinPolicy(EffectiveWeights weights) : ILoadBalancingPolicy, IPreparingPolicy
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
        var set = state.Enter(cluster, availableDestinations, weights, DestinationSet.PickKind.RoundRobin);
        try
        {
            if (set.Schedule is { } schedule)
            {
                return set.Destinations[schedule[(int)(state.Next() % (uint)schedule.Length)]];
            }

            if (set.Kept)
            {
                return set.Destinations[set.Deadlines!.Next()];
            }

            // A set built for one pick (the destinations a retry has left) would start its order at the heaviest
            // destination every time; a weighted draw keyed by the cluster's counter spreads retries by weight.
            return set.Destinations[WeightedDraw(set.Weights, RendezvousHash.Mix(state.Next()))];
        }
        finally
        {
            ClusterPolicyState.Exit(set);
        }
    }

    public void Prepare(ClusterState cluster) => _clusters.Prepare(cluster, weights, DestinationSet.PickKind.RoundRobin);

    private static int WeightedDraw(ReadOnlySpan<int> weights, ulong random)
    {
        long total = 0;
        foreach (var weight in weights)
        {
            total += weight;
        }

        var target = (long)(random % (ulong)total);
        for (var i = 0; i < weights.Length; i++)
        {
            target -= weights[i];
            if (target < 0)
            {
                return i;
            }
        }

        return weights.Length - 1;
    }
}
