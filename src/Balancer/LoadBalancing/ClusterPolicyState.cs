using System.Runtime.CompilerServices;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// What one policy remembers about one cluster: its last destination snapshot, a rotating counter and,
/// for IpHash over a large cluster, the lookup table of its configured destinations and which of them are available. Held per policy instance (not in statics) so that
/// clusters and test hosts never share state.
/// </summary>
internal sealed class ClusterPolicyState(Action<Action> runBuild)
{
    private readonly Lock _firstTable = new();
    private DestinationSet? _set;

    // The buffers of the set replaced last, which the next build takes over once no pick holds that set (see DestinationSet).
    private DestinationSet.Buffers? _retired;
    private ConfiguredTable? _table;
    private ConfiguredTable.Availability? _availability;
    private int _building;
    private int _tableBuilds;
    private uint _counter;
    private int _builds;
    private int _handOvers;

    /// <summary>Snapshots built for the cluster's own available list (a retry's are not counted): the work a change causes.</summary>
    public int Builds => Volatile.Read(ref _builds);

    /// <summary>Snapshots built into the buffers of an earlier one rather than new arrays (see <see cref="DestinationSet"/>).</summary>
    public int HandOvers => Volatile.Read(ref _handOvers);

    /// <summary>The snapshot kept for the cluster's own available set, if one was built.</summary>
    public DestinationSet? Cached => Volatile.Read(ref _set);

    /// <summary>
    /// The snapshot for <paramref name="available"/>, held for the caller until it calls <see cref="Exit"/>. Only the
    /// cluster's own available list is kept (replaced without a lock when it is stale); any other list, such as the
    /// destinations a retry has left, gets a snapshot of its own that is not kept, so a retry never evicts what the
    /// next ordinary request needs.
    /// </summary>
    /// <remarks>
    /// A set with buffers (a large cluster's own, see <see cref="DestinationSet"/>) is held by counting the pick in its
    /// buffers and then checking that it is still the cluster's. Once replaced, it is never the cluster's again, and its
    /// buffers go to a later set only when no pick is counted in them (read after a full fence): a pick counted in before
    /// the replacement is seen, and one counted in after it finds the set replaced and leaves before reading anything.
    /// Lock-free: a pick never waits.
    /// </remarks>
    public DestinationSet Enter(ClusterState cluster, IReadOnlyList<DestinationState> available, EffectiveWeights weights, DestinationSet.PickKind kind)
    {
        while (true)
        {
            var current = Volatile.Read(ref _set);
            if (current is not null && !TryHold(current))
            {
                // Replaced meanwhile: its successor is the one to match or to build from.
                continue;
            }

            if (current is not null && current.Matches(cluster, available, weights))
            {
                return current;
            }

            var own = ReferenceEquals(available, cluster.DestinationsState.AvailableDestinations);
            DestinationSet set;
            try
            {
                // The current set is held while the new one copies its weights.
                var spare = own && DestinationSet.Pools(kind, available.Count) ? TakeSpare() : null;
                set = DestinationSet.Build(cluster, available, weights, kind, current, own, spare);
            }
            finally
            {
                Exit(current);
            }

            if (!own)
            {
                return set;
            }

            Interlocked.Increment(ref _builds);
            // Losing this race only means another request's equivalent snapshot wins; the loop then holds whichever is current.
            if (Interlocked.Exchange(ref _set, set)?.Pooled is { } replaced)
            {
                // Only the arrays wait for the next build: the set and the available list it held are left to the collector.
                Volatile.Write(ref _retired, replaced);
            }
        }
    }

    /// <summary>Ends the hold <see cref="Enter"/> took on <paramref name="set"/>.</summary>
    public static void Exit(DestinationSet? set) => set?.Pooled?.Exit();

    /// <summary>The snapshot for <paramref name="available"/> when nothing is read from it afterwards (see <see cref="Enter"/>).</summary>
    public DestinationSet SetFor(ClusterState cluster, IReadOnlyList<DestinationState> available, EffectiveWeights weights, DestinationSet.PickKind kind)
    {
        var set = Enter(cluster, available, weights, kind);
        Exit(set);
        return set;
    }

    private bool TryHold(DestinationSet set)
    {
        if (set.Pooled is not { } buffers)
        {
            return true;
        }

        buffers.Enter();
        if (ReferenceEquals(Volatile.Read(ref _set), set))
        {
            return true;
        }

        buffers.Exit();
        return false;
    }

    /// <summary>The buffers of the set replaced last, if no pick holds it any more; otherwise it stays for a later build.</summary>
    private DestinationSet.Buffers? TakeSpare()
    {
        // The exchange is the full fence before Idle's read.
        if (Interlocked.Exchange(ref _retired, null) is not { } retired)
        {
            return null;
        }

        if (retired.Idle)
        {
            Interlocked.Increment(ref _handOvers);
            return retired;
        }

        Interlocked.CompareExchange(ref _retired, retired, null);
        return null;
    }

    /// <summary>The newest IpHash table of this cluster (possibly of an older config while a newer one is built).</summary>
    public ConfiguredTable? LatestTable => Volatile.Read(ref _table);

    /// <summary>Lookup tables built (<see cref="MaglevTable"/>s, not tables that kept another's slots): the work a reload or weight change caused.</summary>
    public int TableBuilds => Volatile.Read(ref _tableBuilds);

    /// <summary>Whether a table is being made on the thread pool now.</summary>
    public bool Building => Volatile.Read(ref _building) != 0;

    /// <summary>The availability of the cluster's own available set in <see cref="LatestTable"/>, if one was made.</summary>
    public ConfiguredTable.Availability? CachedAvailability => Volatile.Read(ref _availability);

    /// <summary>
    /// The IpHash table of <paramref name="cluster"/>'s configured destinations. The first is built now, on the caller's
    /// thread (the first requests wait for one build between them): a client placed by rendezvous hashing until a table
    /// existed would move once it did. When the config or a weight changed since, the table is made again on the thread
    /// pool (a new one takes tens of milliseconds at thousands of destinations, which no request should wait for) and
    /// the current one answers meanwhile; a health or admin change never gets here, since it changes neither.
    /// </summary>
    public ConfiguredTable TableFor(ClusterState cluster, IReadOnlyList<DestinationState> all, EffectiveWeights weights)
    {
        if (LatestTable is not { } table)
        {
            lock (_firstTable)
            {
                if (LatestTable is null)
                {
                    Publish(ConfiguredTable.For(cluster, all, weights, previous: null, out var built), built);
                }

                table = LatestTable!;
            }
        }

        if (!table.Describes(all, weights.Generation))
        {
            RequestTable(cluster, weights);
        }

        return table;
    }

    // Apart from TableFor so that the closure is allocated only when a build is requested, not on every pick.
    private void RequestTable(ClusterState cluster, EffectiveWeights weights)
    {
        if (Interlocked.CompareExchange(ref _building, 1, 0) == 0)
        {
            runBuild(() => BuildTables(cluster, weights));
        }
    }

    /// <summary>
    /// Which destinations of <paramref name="table"/> are in <paramref name="set"/>: kept for the cluster's own set
    /// (<see cref="Cached"/>), made anew for any other (a retry's, which never evicts what the next request needs).
    /// </summary>
    public ConfiguredTable.Availability Availability(ConfiguredTable table, DestinationSet set)
    {
        var current = Volatile.Read(ref _availability);
        if (current is not null && ReferenceEquals(current.Set, set) && ReferenceEquals(current.Table, table))
        {
            return current;
        }

        var availability = table.AvailabilityOf(set);
        if (ReferenceEquals(set, Cached))
        {
            Volatile.Write(ref _availability, availability);
        }

        return availability;
    }

    private void Publish(ConfiguredTable table, bool built)
    {
        if (built)
        {
            Interlocked.Increment(ref _tableBuilds);
        }

        Volatile.Write(ref _table, table);
    }

    private void BuildTables(ClusterState cluster, EffectiveWeights weights)
    {
        try
        {
            // A change while this runs finds _building set and returns; the loop takes it instead, so changes coalesce.
            while (cluster.DestinationsState?.AllDestinations is { Count: > 0 } all && LatestTable is { } table && !table.Describes(all, weights.Generation))
            {
                Publish(ConfiguredTable.For(cluster, all, weights, table, out var built), built);
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

        /// <summary>How many of them took over the buffers of an earlier snapshot, for tests to check that a change allocates none.</summary>
        public int HandOvers(ClusterState cluster) => _states.TryGetValue(cluster, out var state) ? state.HandOvers : 0;

        /// <summary>The newest IpHash table of <paramref name="cluster"/>, for tests to wait for a build.</summary>
        public ConfiguredTable? CachedTable(ClusterState cluster) => _states.TryGetValue(cluster, out var state) ? state.LatestTable : null;

        /// <summary>How many IpHash lookup tables were built for <paramref name="cluster"/>, for tests to bound the work of a change.</summary>
        public int TableBuilds(ClusterState cluster) => _states.TryGetValue(cluster, out var state) ? state.TableBuilds : 0;

        /// <summary>Whether an IpHash table of <paramref name="cluster"/> is being made on the thread pool, for tools to wait until it settles.</summary>
        public bool Building(ClusterState cluster) => _states.TryGetValue(cluster, out var state) && state.Building;

        /// <summary>The availability kept for <paramref name="cluster"/>'s own available set in its IpHash table.</summary>
        public ConfiguredTable.Availability? CachedAvailability(ClusterState cluster) => _states.TryGetValue(cluster, out var state) ? state.CachedAvailability : null;
    }
}
