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

    private DestinationSet(ClusterState cluster, IReadOnlyList<DestinationState> destinations, EffectiveWeights weights, PickKind kind, DestinationSet? previous)
    {
        _source = destinations;
        _kind = kind;
        _generation = weights.Generation;
        var state = cluster.DestinationsState;
        _all = state?.AllDestinations;
        var count = destinations.Count;
        // The cluster's own list is an array no one changes (RuntimeAvailableDestinations makes one per change):
        // it is taken as it is rather than copied.
        Destinations = destinations is DestinationState[] array && ReferenceEquals(destinations, state?.AvailableDestinations) ? array : [.. destinations];
        if (kind == PickKind.IpHash && _all is { Count: > MaglevTable.MinDestinations })
        {
            // IpHash over a large cluster picks through the table of its configured destinations, which holds their id
            // hashes and weights (see ConfiguredTable): a change of the available set then costs no array of either.
            Weights = [];
            IdHashes = [];
            Configured = _all;
            _expires = long.MaxValue;
            return;
        }

        Weights = new int[count];
        IdHashes = kind == PickKind.IpHash ? new ulong[count] : [];

        // No slow start for IpHash: a ramp would move clients twice, away and back, for no gain.
        _expires = Fill(cluster, weights, kind, previous);
        if (kind == PickKind.IpHash)
        {
            return;
        }

        if (SmoothWeightedRoundRobin.FitsUnrolled(Weights))
        {
            Schedule = SmoothWeightedRoundRobin.BuildSchedule(Weights);
        }
        else if (kind == PickKind.RoundRobin)
        {
            Deadlines = EarliestDeadlineFirst.Over(Weights);
        }
        else
        {
            Turns = new LeastConnections.Turns(count);
        }
    }

    /// <summary>
    /// Weights (and, for IpHash, id hashes) taken from <paramref name="previous"/> for every destination it held, when the
    /// cluster's destinations were not reconfigured, no weight override or ramp changed since and none was ramping then: a change of one
    /// destination in a cluster of thousands then weighs (and hashes) one, not all. YARP keeps the order of the
    /// destinations it leaves in a list, so the previous set is walked alongside, looking a few places ahead; a
    /// destination not found there is computed. Returns when a ramp takes its next step (<see cref="long.MaxValue"/>: never).
    /// </summary>
    private long Fill(ClusterState cluster, EffectiveWeights weights, PickKind kind, DestinationSet? previous)
    {
        const int LookAhead = 8;
        var count = Destinations.Length;
        var slowStart = kind != PickKind.IpHash;
        var reuse = previous is not null && previous._kind == kind && previous._generation == _generation && previous._expires == long.MaxValue
            && previous._all is not null && ReferenceEquals(previous._all, _all) && previous.Weights.Length == previous.Destinations.Length ? previous : null;
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
                Weights[i] = reuse!.Weights[found];
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
            return weights.Fill(cluster, Destinations, Weights, slowStart);
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
            Weights[missing[k]] = freshWeights[k];
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

    public DestinationState[] Destinations { get; }

    /// <summary>The effective weights (in twentieths for RoundRobin and LeastConnections, which follow slow start); empty for IpHash over a table.</summary>
    public int[] Weights { get; }

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

    /// <summary>Returns <paramref name="current"/> if it still describes <paramref name="available"/>, else a new snapshot.</summary>
    public static DestinationSet For(DestinationSet? current, ClusterState cluster, IReadOnlyList<DestinationState> available, EffectiveWeights weights, PickKind kind) =>
        current is not null && current.Matches(cluster, available, weights) ? current : new DestinationSet(cluster, available, weights, kind, current);

    private bool Matches(ClusterState cluster, IReadOnlyList<DestinationState> available, EffectiveWeights weights)
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
