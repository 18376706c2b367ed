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
/// IpHash table of a large cluster is built apart (see <see cref="ClusterPolicyState.RequestTable"/>).
/// </remarks>
internal sealed class DestinationSet
{
    private readonly IReadOnlyList<DestinationState> _source;
    private readonly DestinationModel[] _models;
    private readonly long _generation;
    private readonly long _expires;

    private DestinationSet(ClusterState cluster, IReadOnlyList<DestinationState> destinations, EffectiveWeights weights, PickKind kind)
    {
        _source = destinations;
        _generation = weights.Generation;
        var count = destinations.Count;
        Destinations = new DestinationState[count];
        _models = new DestinationModel[count];
        Weights = new int[count];
        IdHashes = kind == PickKind.IpHash ? new ulong[count] : [];
        for (var i = 0; i < count; i++)
        {
            var destination = destinations[i];
            Destinations[i] = destination;
            _models[i] = destination.Model;
        }

        // No slow start for IpHash: a ramp would move clients twice, away and back, for no gain.
        _expires = weights.Fill(cluster, Destinations, Weights, slowStart: kind != PickKind.IpHash);
        if (kind == PickKind.IpHash)
        {
            for (var i = 0; i < count; i++)
            {
                IdHashes[i] = RendezvousHash.HashId(Destinations[i].DestinationId);
            }

            return;
        }

        if (SmoothWeightedRoundRobin.FitsUnrolled(Weights))
        {
            Schedule = SmoothWeightedRoundRobin.BuildSchedule(Weights);
        }
        else if (kind == PickKind.RoundRobin)
        {
            Deadlines = new EarliestDeadlineFirst(Weights);
        }
        else
        {
            Turns = new LeastConnections.Turns(count);
        }
    }

    /// <summary>What a set is built for: each policy needs its own derived structure.</summary>
    public enum PickKind
    {
        RoundRobin,
        LeastConnections,
        IpHash,
    }

    public DestinationState[] Destinations { get; }

    /// <summary>The effective weights (in twentieths for RoundRobin and LeastConnections, which follow slow start).</summary>
    public int[] Weights { get; }

    /// <summary>Hashed destination ids (IpHash only).</summary>
    public ulong[] IdHashes { get; }

    /// <summary>
    /// One period of the smooth weighted round-robin order, as indices into <see cref="Destinations"/>; null when the
    /// period is too long to unroll (RoundRobin and LeastConnections only).
    /// </summary>
    public int[]? Schedule { get; }

    /// <summary>The weighted order of a RoundRobin set with no <see cref="Schedule"/>.</summary>
    public EarliestDeadlineFirst? Deadlines { get; }

    /// <summary>The tie-breaking turns of a LeastConnections set with no <see cref="Schedule"/>.</summary>
    public LeastConnections.Turns? Turns { get; }

    /// <summary>Whether IpHash picks this set through a <see cref="MaglevTable"/> rather than by rendezvous hashing.</summary>
    public bool UsesTable => IdHashes.Length > MaglevTable.MinDestinations;

    /// <summary>
    /// Whether <paramref name="destination"/> is in this set: a scan of references (about 10 µs at 10,000), asked only
    /// while a new IpHash table is being built, which keeps the change itself cheap.
    /// </summary>
    public bool Contains(DestinationState destination) => Array.IndexOf(Destinations, destination) >= 0;

    /// <summary>Returns <paramref name="current"/> if it still describes <paramref name="available"/>, else a new snapshot.</summary>
    public static DestinationSet For(DestinationSet? current, ClusterState cluster, IReadOnlyList<DestinationState> available, EffectiveWeights weights, PickKind kind) =>
        current is not null && current.Matches(available, weights) ? current : new DestinationSet(cluster, available, weights, kind);

    private bool Matches(IReadOnlyList<DestinationState> available, EffectiveWeights weights)
    {
        if (available.Count != Destinations.Length || _generation != weights.Generation
            || (_expires != long.MaxValue && weights.Time.GetTimestamp() >= _expires))
        {
            return false;
        }

        // YARP replaces the list, never changes it in place, whenever membership or a destination's config changes.
        if (ReferenceEquals(available, _source))
        {
            return true;
        }

        for (var i = 0; i < Destinations.Length; i++)
        {
            var destination = available[i];
            if (!ReferenceEquals(destination, Destinations[i]) || !ReferenceEquals(destination.Model, _models[i]))
            {
                return false;
            }
        }

        return true;
    }
}
