using System.Numerics;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// Picks the destination with the fewest in-flight requests per unit of effective weight; ties go by
/// weighted round robin among the tied (see <see cref="LeastConnections"/>).
/// </summary>
/// <remarks>
/// Reads YARP's own <see cref="DestinationState.ConcurrentRequestCount"/>, which YARP increments just after
/// the pick. Pick and increment are not atomic, so a burst can briefly tie on a stale count; the rotating
/// schedule position spreads such a burst instead of sending all of it to the first destination.
/// </remarks>
internal sealed class LeastConnectionsPolicy(EffectiveWeights weights) : ILoadBalancingPolicy, IPreparingPolicy
{
    private const int StackLimit = 64;

    // Owned per thread rather than rented: ArrayPool.Shared may allocate on a rent after it trims or when a
    // thread lands on an empty per-core partition, and a pick must never allocate.
    [ThreadStatic]
    private static int[]? t_inFlight;

    private readonly ClusterPolicyState.Table _clusters = new();

    public string Name => PolicyNames.LeastConnections;

    internal ClusterPolicyState.Table Clusters => _clusters;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations)
    {
        var count = availableDestinations.Count;
        if (count == 0)
        {
            return null;
        }

        var state = _clusters.For(cluster);
        var set = state.Enter(cluster, availableDestinations, weights, DestinationSet.PickKind.LeastConnections);
        try
        {
            var destinations = set.Destinations;
            Span<int> inFlight = count <= StackLimit ? stackalloc int[count] : InFlightBuffer(count);
            for (var i = 0; i < count; i++)
            {
                inFlight[i] = destinations[i].ConcurrentRequestCount;
            }

            if (set.Schedule is not { } schedule)
            {
                return destinations[LeastConnections.PickAtScale(inFlight, set.Weights, set.Turns!)];
            }

            var position = state.Peek();
            var (index, advance) = LeastConnections.Pick(inFlight, set.Weights, schedule, position);
            state.Advance(position, (uint)advance);
            return destinations[index];
        }
        finally
        {
            ClusterPolicyState.Exit(set);
        }
    }

    public void Prepare(ClusterState cluster) => _clusters.Prepare(cluster, weights, DestinationSet.PickKind.LeastConnections);

    private static Span<int> InFlightBuffer(int count)
    {
        var buffer = t_inFlight;
        if (buffer is null || buffer.Length < count)
        {
            // Grown to the next power of two so a cluster growing one destination at a time reallocates rarely.
            t_inFlight = buffer = new int[(int)BitOperations.RoundUpToPowerOf2((uint)count)];
        }

        return buffer.AsSpan(0, count);
    }
}
