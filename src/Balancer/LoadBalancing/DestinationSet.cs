using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// An immutable snapshot of the destinations a policy may pick from, with everything the policies derive
/// from them (effective weights, id hashes, the round-robin schedule) computed once.
/// </summary>
/// <remarks>
/// YARP hands a policy the same list instance until health or config changes, so the snapshot is checked
/// by reference per request (no allocation) and rebuilt only when membership, a destination's config, an
/// operator's override (<see cref="EffectiveWeights.Generation"/>) or a slow-start step changed. Weights come
/// only from <see cref="EffectiveWeights"/>: a different schedule structure changes this class, nothing else.
/// </remarks>
internal sealed class DestinationSet
{
    private readonly DestinationModel[] _models;
    private readonly long _generation;
    private readonly long _expires;

    private DestinationSet(ClusterState cluster, IReadOnlyList<DestinationState> destinations, EffectiveWeights weights, bool slowStart)
    {
        _generation = weights.Generation;
        var count = destinations.Count;
        Destinations = new DestinationState[count];
        _models = new DestinationModel[count];
        Weights = new int[count];
        IdHashes = new ulong[count];
        for (var i = 0; i < count; i++)
        {
            var destination = destinations[i];
            Destinations[i] = destination;
            _models[i] = destination.Model;
            IdHashes[i] = RendezvousHash.HashId(destination.DestinationId);
        }

        _expires = weights.Fill(cluster, Destinations, Weights, slowStart);
        Schedule = SmoothWeightedRoundRobin.BuildSchedule(Weights);
    }

    public DestinationState[] Destinations { get; }

    /// <summary>The effective weights (in twentieths when the set was built for slow start).</summary>
    public int[] Weights { get; }

    public ulong[] IdHashes { get; }

    /// <summary>One period of the smooth weighted round-robin order, as indices into <see cref="Destinations"/>.</summary>
    public int[] Schedule { get; }

    /// <summary>Returns <paramref name="current"/> if it still describes <paramref name="available"/>, else a new snapshot.</summary>
    /// <param name="slowStart">Whether slow-start ramps shape the weights (RoundRobin, LeastConnections) or not (IpHash).</param>
    public static DestinationSet For(DestinationSet? current, ClusterState cluster, IReadOnlyList<DestinationState> available, EffectiveWeights weights, bool slowStart) =>
        current is not null && current.Matches(available, weights) ? current : new DestinationSet(cluster, available, weights, slowStart);

    private bool Matches(IReadOnlyList<DestinationState> available, EffectiveWeights weights)
    {
        if (available.Count != Destinations.Length || _generation != weights.Generation
            || (_expires != long.MaxValue && weights.Time.GetTimestamp() >= _expires))
        {
            return false;
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
