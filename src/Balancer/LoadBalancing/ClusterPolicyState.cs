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

    /// <summary>The snapshot kept for the cluster's own available set, if one was built.</summary>
    public DestinationSet? Cached => Volatile.Read(ref _set);

    /// <summary>
    /// The snapshot for <paramref name="available"/>. Only the cluster's own available list is kept (replaced
    /// without a lock when it is stale); any other list, such as the destinations a retry has left, gets a
    /// snapshot of its own that is not kept, so a retry never evicts what the next ordinary request needs.
    /// </summary>
    public DestinationSet SetFor(ClusterState cluster, IReadOnlyList<DestinationState> available, EffectiveWeights weights, bool slowStart)
    {
        var current = Volatile.Read(ref _set);
        var set = DestinationSet.For(current, cluster, available, weights, slowStart);
        if (!ReferenceEquals(set, current) && ReferenceEquals(available, cluster.DestinationsState.AvailableDestinations))
        {
            // Losing this race only means another request's equivalent snapshot wins.
            Volatile.Write(ref _set, set);
        }

        return set;
    }

    /// <summary>Returns the counter's next value; wraps around harmlessly.</summary>
    public uint Next() => Interlocked.Increment(ref _counter) - 1;

    /// <summary>The counter's value, for a caller that moves it by <see cref="Advance"/>.</summary>
    public uint Peek() => Volatile.Read(ref _counter);

    /// <summary>
    /// Moves the counter from <paramref name="from"/> by <paramref name="steps"/> unless another request moved
    /// it first; the loser's pick stands, so a race costs a repeated position, never a lock.
    /// </summary>
    public void Advance(uint from, uint steps) => Interlocked.CompareExchange(ref _counter, from + steps, from);

    /// <summary>Per-cluster states of one policy instance, collected with their clusters.</summary>
    public sealed class Table
    {
        private readonly ConditionalWeakTable<ClusterState, ClusterPolicyState> _states = new();

        public ClusterPolicyState For(ClusterState cluster) =>
            _states.TryGetValue(cluster, out var state) ? state : _states.GetValue(cluster, static _ => new ClusterPolicyState());

        /// <summary>The snapshot kept for <paramref name="cluster"/>, for tests to check what a request left behind.</summary>
        public DestinationSet? CachedSet(ClusterState cluster) => _states.TryGetValue(cluster, out var state) ? state.Cached : null;
    }
}
