using System.Runtime.CompilerServices;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// What one policy remembers about one cluster: its last destination snapshot, a rotating counter and,
/// for IpHash over a large cluster, the newest lookup table. Held per policy instance (not in statics) so that
/// clusters and test hosts never share state.
/// </summary>
internal sealed class ClusterPolicyState(Action<Action> runBuild)
{
    private readonly Lock _firstTable = new();
    private DestinationSet? _set;
    private BuiltTable? _table;
    private int _building;
    private uint _counter;
    private int _builds;

    /// <summary>Snapshots built for the cluster's own available list (a retry's are not counted): the work a change causes.</summary>
    public int Builds => Volatile.Read(ref _builds);

    /// <summary>The snapshot kept for the cluster's own available set, if one was built.</summary>
    public DestinationSet? Cached => Volatile.Read(ref _set);

    /// <summary>
    /// The snapshot for <paramref name="available"/>. Only the cluster's own available list is kept (replaced
    /// without a lock when it is stale); any other list, such as the destinations a retry has left, gets a
    /// snapshot of its own that is not kept, so a retry never evicts what the next ordinary request needs.
    /// </summary>
    public DestinationSet SetFor(ClusterState cluster, IReadOnlyList<DestinationState> available, EffectiveWeights weights, DestinationSet.PickKind kind)
    {
        var current = Volatile.Read(ref _set);
        var set = DestinationSet.For(current, cluster, available, weights, kind);
        if (!ReferenceEquals(set, current) && ReferenceEquals(available, cluster.DestinationsState.AvailableDestinations))
        {
            Interlocked.Increment(ref _builds);
            // Losing this race only means another request's equivalent snapshot wins.
            Volatile.Write(ref _set, set);
        }

        return set;
    }

    /// <summary>The newest lookup table built for this cluster, and the snapshot it was built from (possibly an older one).</summary>
    public BuiltTable? LatestTable => Volatile.Read(ref _table);

    /// <summary>
    /// Builds a lookup table for the cached snapshot on the thread pool, unless one exists or is being built:
    /// a table of a large cluster takes tens of milliseconds, which no request should wait for. Meanwhile picks
    /// use the previous table where it still names an available destination. Builds for snapshots that changed
    /// again while one ran are coalesced into one for the newest.
    /// </summary>
    public void RequestTable(DestinationSet set)
    {
        if (!ReferenceEquals(set, Cached) || ReferenceEquals(LatestTable?.Set, set) || Interlocked.CompareExchange(ref _building, 1, 0) != 0)
        {
            return;
        }

        runBuild(BuildTables);
    }

    /// <summary>
    /// The cluster's first lookup table, built now on the caller's thread when there is none yet (the first
    /// requests wait for one build between them): a client placed by rendezvous hashing until a table existed
    /// would move once it did, so every client would move once just after start-up or a switch to IpHash.
    /// Returns null, building nothing, when <paramref name="set"/> is not the cluster's own list (a retry's).
    /// </summary>
    public BuiltTable? FirstTable(DestinationSet set)
    {
        if (LatestTable is { } built)
        {
            return built;
        }

        lock (_firstTable)
        {
            if (LatestTable is { } other)
            {
                return other;
            }

            if (!ReferenceEquals(set, Cached))
            {
                return null;
            }

            var table = new BuiltTable(set, new MaglevTable(set.IdHashes, set.Weights));
            // A background build that finished meanwhile (for a newer snapshot) wins.
            Interlocked.CompareExchange(ref _table, table, null);
            return LatestTable;
        }
    }

    private void BuildTables()
    {
        try
        {
            // A snapshot cached while this runs finds _building set and returns; the loop takes it instead.
            while (Cached is { } set && !ReferenceEquals(LatestTable?.Set, set))
            {
                Volatile.Write(ref _table, new BuiltTable(set, new MaglevTable(set.IdHashes, set.Weights)));
            }
        }
        finally
        {
            Volatile.Write(ref _building, 0);
        }
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

        /// <summary>Runs a table build; the thread pool, or, in tests, whatever decides when builds happen.</summary>
        public Action<Action> RunBuild { get; set; } = static build => ThreadPool.UnsafeQueueUserWorkItem(static b => b(), build, preferLocal: false);

        public ClusterPolicyState For(ClusterState cluster) =>
            _states.TryGetValue(cluster, out var state) ? state : _states.GetValue(cluster, _ => new ClusterPolicyState(build => RunBuild(build)));

        /// <summary>Builds and keeps the snapshot of <paramref name="cluster"/>'s current available list, if a policy would pick from it.</summary>
        public void Prepare(ClusterState cluster, EffectiveWeights weights, DestinationSet.PickKind kind)
        {
            var available = cluster.DestinationsState.AvailableDestinations;
            if (available.Count >= 2)
            {
                For(cluster).SetFor(cluster, available, weights, kind);
            }
        }

        /// <summary>The snapshot kept for <paramref name="cluster"/>, for tests to check what a request left behind.</summary>
        public DestinationSet? CachedSet(ClusterState cluster) => _states.TryGetValue(cluster, out var state) ? state.Cached : null;

        /// <summary>How many snapshots of <paramref name="cluster"/>'s own available list were built, for tests to bound the work of a change.</summary>
        public int Builds(ClusterState cluster) => _states.TryGetValue(cluster, out var state) ? state.Builds : 0;

        /// <summary>The newest lookup table of <paramref name="cluster"/>, for tests to wait for a build.</summary>
        public BuiltTable? CachedTable(ClusterState cluster) => _states.TryGetValue(cluster, out var state) ? state.LatestTable : null;
    }

    /// <summary>A lookup table and the snapshot whose destinations its slots index.</summary>
    public sealed record BuiltTable(DestinationSet Set, MaglevTable Table);
}
