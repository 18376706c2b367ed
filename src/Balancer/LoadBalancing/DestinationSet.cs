using System.Runtime.CompilerServices;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// An immutable snapshot of the destinations a policy may pick from, with everything the policy derives
/// from them (effective weights, id hashes, the round-robin order) computed once.
/// </summary>
/// <remarks>
/// YARP hands a policy the same list instance until health or config changes, so the snapshot is checked
/// by reference per request (no allocation, no walk over the list) and rebuilt only when membership, a
/// destination's config, an operator's override (<see cref="EffectiveWeights.Generation"/>) or a slow-start
/// step changed. Weights come only from <see cref="EffectiveWeights"/>. A build costs O(N log N) at most,
/// whatever the weights: the round-robin order is unrolled only while its period is short, and the
/// IpHash table of a large cluster is built from its config, not from this set (see <see cref="ConfiguredTable"/>). After a
/// change of membership it copies references and weights rather than weighing every destination again.
/// <para>
/// The set of a large cluster's own available list (RoundRobin's earliest-deadline order, LeastConnections' turns) keeps
/// its arrays in <see cref="Buffers"/> that the next set but one takes over, rather than allocating three (two) arrays
/// of the cluster's size on every change: tens of KB at 10,000 that the next young collection copies because an old
/// object holds them. A set's buffers are handed on only once it is no longer the cluster's and no pick holds it
/// (<see cref="ClusterPolicyState"/> counts the picks in and out), so a pick never sees arrays being rewritten; the set
/// built into them is the very set new arrays would give.
/// </para>
/// </remarks>
internal sealed class DestinationSet
{
    // The list this set was built from, or a later one found to hold the same destinations (see Matches).
    private IReadOnlyList<DestinationState> _source;

    // The cluster's list of all destinations when this set was built: YARP replaces it whenever a destination is
    // added, removed or reconfigured (a new model), and keeps it when only health or state changes. While it is
    // the same, no destination's model changed, so nothing needs comparing per destination.
    private readonly IReadOnlyList<DestinationState>? _all;
    private readonly long _generation;
    private readonly long _expires;
    private readonly PickKind _kind;

    // The weights are the first _weighed places of _weights (longer when it is a buffer taken over from an earlier set).
    private readonly int[] _weights;
    private readonly int _weighed;
    private readonly Buffers? _buffers;

    // The destinations are the first _count places of _destinations (longer when it is a buffer).
    private readonly DestinationState[] _destinations;
    private readonly int _count;

    private DestinationSet(ClusterState cluster, IReadOnlyList<DestinationState> destinations, EffectiveWeights weights, PickKind kind, DestinationSet? previous, bool kept, Buffers? spare)
    {
        Kept = kept;
        _source = destinations;
        _kind = kind;
        _generation = weights.Generation;
        var state = cluster.DestinationsState;
        _all = state?.AllDestinations;
        var count = destinations.Count;
        if (kept && Pools(kind, count))
        {
            _buffers = spare is not null && spare.Fits(count, kind) ? spare : new Buffers(Math.Max(count, _all?.Count ?? 0), kind);
        }

        // The cluster's own list, when an array, is one no one changes (RuntimeAvailableDestinations makes one per change or
        // per list of all): it is taken as it is rather than copied. A list of all but a few (an AvailableList) is read
        // into the buffer, which costs no allocation.
        _count = count;
        if (destinations is DestinationState[] array && ReferenceEquals(destinations, state?.AvailableDestinations))
        {
            _destinations = array;
        }
        else
        {
            _destinations = _buffers?.DestinationsFor(count) ?? new DestinationState[count];
            Copy(destinations, _destinations);
        }

        if (kind == PickKind.IpHash && _all is { Count: > MaglevTable.MinDestinations })
        {
            // IpHash over a large cluster picks through the table of its configured destinations, which holds their id
            // hashes and weights (see ConfiguredTable): a change of the available set then costs no array of either.
            _weights = [];
            IdHashes = [];
            Configured = _all;
            _expires = long.MaxValue;
            return;
        }

        _weights = kind != PickKind.IpHash && _buffers is { } pooled ? pooled.Weights : new int[count];
        _weighed = count;
        IdHashes = kind == PickKind.IpHash ? new ulong[count] : [];

        // No slow start for IpHash: a ramp would move clients twice, away and back, for no gain.
        _expires = Fill(cluster, weights, kind, previous);
        if (kind == PickKind.IpHash)
        {
            return;
        }

        if (_buffers is null && SmoothWeightedRoundRobin.FitsUnrolled(Weights))
        {
            Schedule = SmoothWeightedRoundRobin.BuildSchedule(Weights);
        }
        else if (kind == PickKind.RoundRobin)
        {
            Deadlines = _buffers is { } buffers
                ? EarliestDeadlineFirst.Over(_weights, count, buffers.Due, buffers.Heap!)
                : EarliestDeadlineFirst.Over(_weights, count, new int[count], new int[count]);
        }
        else
        {
            Turns = _buffers is { } buffers ? LeastConnections.Turns.Over(buffers.Due, count) : new LeastConnections.Turns(count);
        }
    }

    /// <summary>
    /// Whether a cluster's own set of <paramref name="count"/> destinations keeps its arrays in <see cref="Buffers"/>: only
    /// where they are large; for RoundRobin and LeastConnections never unrolled (no cluster this large fits, see
    /// <see cref="SmoothWeightedRoundRobin.FitsUnrolled"/>), for IpHash only over a table (its destinations alone).
    /// </summary>
    public static bool Pools(PickKind kind, int count) =>
        kind == PickKind.IpHash ? count > MaglevTable.MinDestinations : (long)count * count > SmoothWeightedRoundRobin.MaxBuildSteps;

    private static void Copy(IReadOnlyList<DestinationState> list, DestinationState[] into)
    {
        switch (list)
        {
            case Runtime.AvailableList available:
                available.CopyTo(into);
                break;
            case DestinationState[] array:
                array.CopyTo(into, 0);
                break;
            default:
                for (var i = 0; i < list.Count; i++)
                {
                    into[i] = list[i];
                }

                break;
        }

        // A reused buffer holds nothing past the list, so it keeps no destination a reload removed.
        Array.Clear(into, list.Count, into.Length - list.Count);
    }

    /// <summary>The arrays this set keeps in, when a later set may take them over; picks are counted while they hold it.</summary>
    public Buffers? Pooled => _buffers;

    /// <summary>Whether this set was built for the cluster's own available list (not the destinations a retry has left).</summary>
    public bool Kept { get; }

    /// <summary>
    /// The arrays of a large cluster's snapshot: weights, and the deadlines and heap of the earliest-deadline order or the
    /// turns of LeastConnections, and the destinations when the available list is not an array. In use by one set at a
    /// time; at least as long as its destinations. They count the picks holding that set, so that the set after next
    /// takes them over only when none does.
    /// </summary>
    public sealed class Buffers(int capacity, PickKind kind)
    {
        private int _readers;
        private DestinationState[]? _destinations;

        public int[] Weights { get; } = kind == PickKind.IpHash ? [] : new int[capacity];

        public int[] Due { get; } = kind == PickKind.IpHash ? [] : new int[capacity];

        public int[]? Heap { get; } = kind == PickKind.RoundRobin ? new int[capacity] : null;

        /// <summary>Whether no pick holds the set using them. Read after a full fence, once that set is no longer the cluster's.</summary>
        public bool Idle => Volatile.Read(ref _readers) == 0;

        public bool Fits(int count, PickKind kind) => capacity >= count && kind == Kind;

        private PickKind Kind { get; } = kind;

        /// <summary>Where a set copies a list it cannot hold as it is (see <see cref="Runtime.AvailableList"/>); made the first time one does.</summary>
        public DestinationState[] DestinationsFor(int count) => _destinations ??= new DestinationState[Math.Max(capacity, count)];

        /// <summary>A pick starts to hold the set using these (a full fence: the caller then checks that the set is still the cluster's).</summary>
        public void Enter() => Interlocked.Increment(ref _readers);

        public void Exit() => Interlocked.Decrement(ref _readers);
    }

    /// <summary>
    /// Weights (and, for IpHash, id hashes) taken from <paramref name="previous"/> for every destination it held, when the
    /// cluster's destinations were not reconfigured, no weight override or ramp changed since and none was ramping then: a change of one
    /// destination in a cluster of thousands then weighs (and hashes) one, not all. YARP keeps the order of the
    /// destinations it leaves in a list, so the previous set is walked alongside, looking a few places ahead; a
    /// destination not found there is computed. Returns when a ramp takes its next step (<see cref="long.MaxValue"/>: never).
    /// </summary>
    [MethodImpl(PerChangeCode.Optimized)]
    private long Fill(ClusterState cluster, EffectiveWeights weights, PickKind kind, DestinationSet? previous)
    {
        const int LookAhead = 8;
        var count = Destinations.Length;
        var slowStart = kind != PickKind.IpHash;
        var reuse = previous is not null && previous._kind == kind && previous._generation == _generation && previous._expires == long.MaxValue
            && previous._all is not null && ReferenceEquals(previous._all, _all) && previous._weighed == previous.Destinations.Length ? previous : null;
        List<int>? missing = null;
        var next = 0;
        for (var i = 0; i < count; i++)
        {
            var found = -1;
            if (reuse is not null)
            {
                var end = Math.Min(reuse.Destinations.Length, next + LookAhead);
                for (var j = next; j < end; j++)
                {
                    if (ReferenceEquals(reuse.Destinations[j], Destinations[i]))
                    {
                        found = j;
                        next = j + 1;
                        break;
                    }
                }
            }

            if (found >= 0)
            {
                _weights[i] = reuse!._weights[found];
                if (!slowStart)
                {
                    IdHashes[i] = reuse.IdHashes[found];
                }

                continue;
            }

            if (!slowStart)
            {
                IdHashes[i] = RendezvousHash.HashId(Destinations[i].DestinationId);
            }

            (missing ??= []).Add(i);
        }

        Computed = missing?.Count ?? 0;
        if (missing is null)
        {
            return long.MaxValue;
        }

        if (missing.Count == count)
        {
            return weights.Fill(cluster, Destinations, _weights.AsSpan(0, count), slowStart);
        }

        var fresh = new DestinationState[missing.Count];
        var freshWeights = new int[missing.Count];
        for (var k = 0; k < fresh.Length; k++)
        {
            fresh[k] = Destinations[missing[k]];
        }

        var expires = weights.Fill(cluster, fresh, freshWeights, slowStart);
        for (var k = 0; k < fresh.Length; k++)
        {
            _weights[missing[k]] = freshWeights[k];
        }

        return expires;
    }

    /// <summary>What a set is built for: each policy needs its own derived structure.</summary>
    public enum PickKind
    {
        RoundRobin,
        LeastConnections,
        IpHash,
    }

    public ReadOnlySpan<DestinationState> Destinations => _destinations.AsSpan(0, _count);

    /// <summary>The effective weights (in twentieths for RoundRobin and LeastConnections, which follow slow start); empty for IpHash over a table.</summary>
    public ReadOnlySpan<int> Weights => _weights.AsSpan(0, _weighed);

    /// <summary>How many destinations this set weighed (and, for IpHash, hashed) itself rather than took from the previous set.</summary>
    public int Computed { get; private set; }

    /// <summary>Hashed destination ids (IpHash by rendezvous hashing only: a cluster of more than <see cref="MaglevTable.MinDestinations"/> has them in its table).</summary>
    public ulong[] IdHashes { get; }

    /// <summary>
    /// For IpHash over a table, the cluster's list of all its destinations this set was made beside (the table's input):
    /// read with the available list, so the two always belong together. Null when IpHash picks by rendezvous hashing.
    /// </summary>
    public IReadOnlyList<DestinationState>? Configured { get; }

    /// <summary>
    /// One period of the smooth weighted round-robin order, as indices into <see cref="Destinations"/>; null when the
    /// period is too long to unroll (RoundRobin and LeastConnections only).
    /// </summary>
    public int[]? Schedule { get; }

    /// <summary>The weighted order of a RoundRobin set with no <see cref="Schedule"/>.</summary>
    public EarliestDeadlineFirst? Deadlines { get; }

    /// <summary>The tie-breaking turns of a LeastConnections set with no <see cref="Schedule"/>.</summary>
    public LeastConnections.Turns? Turns { get; }

    /// <summary>
    /// A new snapshot of <paramref name="available"/>, taking what it can from <paramref name="previous"/> (which the caller
    /// holds). <paramref name="kept"/>: built for the cluster's own list, into <paramref name="spare"/> when it fits.
    /// </summary>
    public static DestinationSet Build(ClusterState cluster, IReadOnlyList<DestinationState> available, EffectiveWeights weights, PickKind kind, DestinationSet? previous, bool kept, Buffers? spare) =>
        new(cluster, available, weights, kind, previous, kept, spare);

    /// <summary>Whether this set still describes <paramref name="available"/> (read while the set is held: see <see cref="ClusterPolicyState.Enter"/>).</summary>
    public bool Matches(ClusterState cluster, IReadOnlyList<DestinationState> available, EffectiveWeights weights)
    {
        if (available.Count != Destinations.Length || _generation != weights.Generation
            || (_expires != long.MaxValue && weights.Time.GetTimestamp() >= _expires))
        {
            return false;
        }

        // YARP replaces the list, never changes it in place, whenever membership or a destination's config changes.
        if (ReferenceEquals(available, Volatile.Read(ref _source)))
        {
            return true;
        }

        if (!ReferenceEquals(cluster.DestinationsState?.AllDestinations, _all))
        {
            return false;
        }

        for (var i = 0; i < Destinations.Length; i++)
        {
            if (!ReferenceEquals(available[i], Destinations[i]))
            {
                return false;
            }
        }

        // A new list of the same destinations (a change that moved none in or out, such as draining one already
        // down): the cluster's own is remembered, so the requests that follow match it by reference, not by a walk.
        if (ReferenceEquals(available, cluster.DestinationsState?.AvailableDestinations))
        {
            Volatile.Write(ref _source, available);
        }

        return true;
    }
}
