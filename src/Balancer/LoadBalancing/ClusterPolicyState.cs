using System.Runtime.CompilerServices;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// What one policy remembers about one cluster: its last destination snapshot and a rotating counter.
/// Held per policy instance (not in statics) so that clusters and test hosts never share state.
/// </summary>
internal sealed class ClusterPolicyState
{
    private DestinationSet? _set;
    private uint _counter;

    /// <summary>The snapshot for <paramref name="available"/>, replaced without a lock when it is stale.</summary>
    public DestinationSet SetFor(IReadOnlyList<DestinationState> available)
    {
        var current = Volatile.Read(ref _set);
        var set = DestinationSet.For(current, available);
        if (!ReferenceEquals(set, current))
        {
            // Losing this race only means another request's equivalent snapshot wins.
            Volatile.Write(ref _set, set);
        }

        return set;
    }

    /// <summary>Returns the counter's next value; wraps around harmlessly.</summary>
    public uint Next() => Interlocked.Increment(ref _counter) - 1;

    /// <summary>Per-cluster states of one policy instance, collected with their clusters.</summary>
    public sealed class Table
    {
        private readonly ConditionalWeakTable<ClusterState, ClusterPolicyState> _states = new();

        public ClusterPolicyState For(ClusterState cluster) =>
            _states.TryGetValue(cluster, out var state) ? state : _states.GetValue(cluster, static _ => new ClusterPolicyState());
    }
}
