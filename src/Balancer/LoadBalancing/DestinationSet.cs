using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// An immutable snapshot of the destinations a policy may pick from, with everything the policies derive
/// from them (weights, id hashes, the round-robin schedule) computed once.
/// </summary>
/// <remarks>
/// YARP hands a policy the same list instance until health or config changes, so the snapshot is checked
/// by reference per request (no allocation) and rebuilt only when membership or a destination's config
/// (and so its weight) changed.
/// </remarks>
internal sealed class DestinationSet
{
    private readonly DestinationModel[] _models;

    private DestinationSet(IReadOnlyList<DestinationState> destinations)
    {
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
            Weights[i] = DestinationWeight.Of(destination.Model.Config);
            IdHashes[i] = RendezvousHash.HashId(destination.DestinationId);
        }

        Schedule = SmoothWeightedRoundRobin.BuildSchedule(Weights);
    }

    public DestinationState[] Destinations { get; }

    public int[] Weights { get; }

    public ulong[] IdHashes { get; }

    /// <summary>One period of the smooth weighted round-robin order, as indices into <see cref="Destinations"/>.</summary>
    public int[] Schedule { get; }

    /// <summary>Returns <paramref name="current"/> if it still describes <paramref name="available"/>, else a new snapshot.</summary>
    public static DestinationSet For(DestinationSet? current, IReadOnlyList<DestinationState> available) =>
        current is not null && current.Matches(available) ? current : new DestinationSet(available);

    private bool Matches(IReadOnlyList<DestinationState> available)
    {
        if (available.Count != Destinations.Length)
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
