using System.Buffers;
using System.Runtime.CompilerServices;
using Yarp.ReverseProxy.Model;

namespace Balancer.LoadBalancing;

/// <summary>
/// The IpHash lookup table of a large cluster, over all its configured destinations (available or not) with their
/// weights: built when the configured set or a weight changes, never on a health or admin change.
/// </summary>
/// <remarks>
/// A pick takes the key's slot and, when that slot's owner is not available now, walks on to an available one
/// (<see cref="MaglevTable.Lookup(ulong, ReadOnlySpan{ulong}, int)"/>); after <see cref="MaxWalk"/> slots it gives
/// up and the policy picks by rendezvous hashing over the available set, which needs nothing built. Both depend only
/// on the config and the available set, so every process agrees, a destination that leaves moves only its own
/// clients, and when it returns exactly those come back. What a change of the available set costs is one bit per
/// configured destination (<see cref="AvailabilityOf"/>), not a table of half a million slots.
/// Weights are the file's, or an operator's override of them (a new table, as a reload that changes a weight
/// would): an override is a decision to move clients. Slow start does not apply: a ramp would move a returning
/// destination's clients twice, away and back, for no gain.
/// </remarks>
internal sealed class ConfiguredTable(
    IReadOnlyList<DestinationState> list, DestinationState[] source, int[] tableIndex, DestinationState[] destinations, ulong[] idHashes, int[] weights, MaglevTable table, long generation)
{
    /// <summary>
    /// Slots a key walks before the exact fallback: with half the destinations out, the chance that all are out is
    /// 2^-64, with 90% out about 0.1%; when most of the cluster is out, rendezvous hashing over the few left is cheap.
    /// </summary>
    public const int MaxWalk = 64;

    // source is the list of all destinations as an array, tableIndex each one's index in the table: found by position on a change.
    private Dictionary<DestinationState, int>? _indexOf;
    private long _checkedGeneration = generation;

    /// <summary>The cluster's list of all its destinations when this table was made (YARP replaces it on a reload that touches them).</summary>
    public IReadOnlyList<DestinationState> List => list;

    /// <summary>The configured destinations in id-hash order: the table's slots index this array.</summary>
    public DestinationState[] Destinations => destinations;

    public ulong[] IdHashes => idHashes;

    public int[] Weights => weights;

    public MaglevTable Table => table;

    /// <summary>Whether this table still describes <paramref name="all"/> at the overrides' <paramref name="generation"/>.</summary>
    public bool Describes(IReadOnlyList<DestinationState>? all, long generation) =>
        ReferenceEquals(all, List) && Volatile.Read(ref _checkedGeneration) == generation;

    /// <summary>
    /// The table for <paramref name="all"/> at today's weights: <paramref name="previous"/> itself, or one sharing its
    /// slots when the ids and weights are the same (a reload that changed an address, an override or ramp that left
    /// every weight as it was); a new <see cref="MaglevTable"/> only when they differ (<paramref name="built"/>).
    /// </summary>
    [MethodImpl(PerChangeCode.Optimized)]
    public static ConfiguredTable For(ClusterState cluster, IReadOnlyList<DestinationState> all, EffectiveWeights weights, ConfiguredTable? previous, out bool built)
    {
        built = false;
        var generation = weights.Generation;
        if (previous is not null && ReferenceEquals(previous.List, all))
        {
            // Same destinations: only an override can have changed a weight.
            var rented = ArrayPool<int>.Shared.Rent(previous.Destinations.Length);
            try
            {
                var current = rented.AsSpan(0, previous.Destinations.Length);
                weights.Fill(cluster, previous.Destinations, current, slowStart: false);
                if (current.SequenceEqual(previous.Weights))
                {
                    Volatile.Write(ref previous._checkedGeneration, generation);
                    return previous;
                }
            }
            finally
            {
                ArrayPool<int>.Shared.Return(rented);
            }
        }

        var count = all.Count;
        var source = all as DestinationState[] ?? [.. all];
        var hashes = new ulong[count];
        var order = new int[count];
        for (var i = 0; i < count; i++)
        {
            hashes[i] = RendezvousHash.HashId(source[i].DestinationId);
            order[i] = i;
        }

        // Id-hash order, so that the table and its indices depend only on the ids and weights, never on YARP's order.
        Array.Sort(hashes, order);
        var destinations = new DestinationState[count];
        var tableIndex = new int[count];
        for (var k = 0; k < count; k++)
        {
            destinations[k] = source[order[k]];
            tableIndex[order[k]] = k;
        }

        var tableWeights = new int[count];
        weights.Fill(cluster, destinations, tableWeights, slowStart: false);
        MaglevTable table;
        if (previous is not null && previous.IdHashes.AsSpan().SequenceEqual(hashes) && previous.Weights.AsSpan().SequenceEqual(tableWeights))
        {
            table = previous.Table;
        }
        else
        {
            table = new MaglevTable(hashes, tableWeights);
            built = true;
        }

        return new ConfiguredTable(all, source, tableIndex, destinations, hashes, tableWeights, table, generation);
    }

    /// <summary>
    /// One bit per table index, set for each of <paramref name="available"/> this table holds (a destination it does
    /// not hold, added by a reload whose table is still being built, is left out until that table is ready).
    /// </summary>
    [MethodImpl(PerChangeCode.Optimized)]
    public Availability AvailabilityOf(DestinationSet available)
    {
        var bits = new ulong[(Destinations.Length + 63) >> 6];
        var count = 0;
        // YARP lists the available destinations in the order of its list of all, so they are found by walking that list
        // alongside (a reference compared or two per destination, no call per destination: this runs on every change);
        // one found out of order (a retry's list, a table older than the list) sends the rest through a dictionary
        // built once per table.
        var next = 0;
        var indexOf = Volatile.Read(ref _indexOf);
        foreach (var destination in available.Destinations)
        {
            var position = -1;
            if (indexOf is null)
            {
                position = Find(destination, next);
                if (position >= 0)
                {
                    next = position + 1;
                }
                else
                {
                    indexOf = IndexOf();
                }
            }

            if (position < 0 && !indexOf!.TryGetValue(destination, out position))
            {
                continue;
            }

            var index = tableIndex[position];
            ref var word = ref bits[index >> 6];
            var bit = 1UL << index;
            if ((word & bit) == 0)
            {
                word |= bit;
                count++;
            }
        }

        return new Availability(available, this, bits, count);
    }

    /// <summary>The index of <paramref name="key"/>'s destination in <see cref="Destinations"/>, or -1 when the walk gave up.</summary>
    public int Lookup(ulong key, Availability available) => available.Count == 0 ? -1 : Table.Lookup(key, available.Bits, MaxWalk);

    /// <summary>Where <paramref name="destination"/> is in the list of all at or after <paramref name="from"/>, or -1.</summary>
    private int Find(DestinationState destination, int from)
    {
        for (var i = from; i < source.Length; i++)
        {
            if (ReferenceEquals(source[i], destination))
            {
                return i;
            }
        }

        return -1;
    }

    private Dictionary<DestinationState, int> IndexOf()
    {
        if (Volatile.Read(ref _indexOf) is { } built)
        {
            return built;
        }

        var indexOf = new Dictionary<DestinationState, int>(source.Length, ReferenceEqualityComparer.Instance);
        for (var i = 0; i < source.Length; i++)
        {
            indexOf.TryAdd(source[i], i);
        }

        return Interlocked.CompareExchange(ref _indexOf, indexOf, null) ?? indexOf;
    }

    /// <summary>Which of a table's destinations an available set holds, one bit each.</summary>
    public sealed class Availability(DestinationSet set, ConfiguredTable table, ulong[] bits, int count)
    {
        public DestinationSet Set => set;

        public ConfiguredTable Table => table;

        public ulong[] Bits => bits;

        /// <summary>How many of the table's destinations are available.</summary>
        public int Count => count;
    }
}
