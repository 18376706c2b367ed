using System.Runtime.CompilerServices;

namespace Balancer.LoadBalancing;

/// <summary>
/// A weighted Maglev lookup table (Eisenbud et al., NSDI 2016): the IpHash picking structure for clusters
/// too large to score every destination per request.
/// </summary>
/// <remarks>
/// Each destination walks its own permutation of the table's slots (offset and step from its id hash) and
/// claims the first free one, in turns given out earliest deadline first by weight, until every slot is taken.
/// A lookup is then one slot read. Destinations are ordered by id hash before the build, so the table
/// depends only on the ids and weights, never on the order YARP lists them in: two balancers with the same
/// config build the same table. IpHash builds it over all of a cluster's configured destinations, once per
/// config (see <see cref="ConfiguredTable"/>), and a key whose slot's owner is out walks on to an available one
/// (<see cref="Lookup(ulong, ReadOnlySpan{ulong}, int)"/>), so a health or admin change moves only the clients of the
/// destination that left. Two tables of different destination sets (a reload) differ in a few slots beyond the
/// leaving destination's (see the tests); rendezvous hashing, used for small clusters, moves exactly its share.
/// </remarks>
public sealed class MaglevTable
{
    /// <summary>Above this many destinations IpHash uses a table; up to it, rendezvous hashing (about 15 ns per destination per pick).</summary>
    public const int MinDestinations = 64;

    /// <summary>The fewest slots per destination (up to twice as many): the resolution of each destination's share, and what keeps a change's disruption near 1/N.</summary>
    public const int SlotsPerDestination = 32;

    private const int MinSize = 65_537;
    private const ulong OffsetSeed = 0x9E3779B97F4A7C15UL;
    private const ulong StepSeed = 0xC2B2AE3D27D4EB4FUL;
    private const ulong WalkSeed = 0x165667B19E3779F9UL;

    private readonly int[] _slots;

    /// <param name="idHashes">The hashed destination ids (<see cref="RendezvousHash.HashId"/>).</param>
    /// <param name="weights">Their weights, each at least 1.</param>
    public MaglevTable(ReadOnlySpan<ulong> idHashes, ReadOnlySpan<int> weights)
        : this(idHashes, weights, SizeFor(idHashes.Length))
    {
    }

    /// <param name="idHashes">The hashed destination ids.</param>
    /// <param name="weights">Their weights, each at least 1.</param>
    /// <param name="size">The number of slots: a prime larger than the number of destinations.</param>
    [MethodImpl(PerChangeCode.Optimized)]
    public MaglevTable(ReadOnlySpan<ulong> idHashes, ReadOnlySpan<int> weights, int size)
    {
        var count = idHashes.Length;
        ArgumentOutOfRangeException.ThrowIfZero(count, nameof(idHashes));
        ArgumentOutOfRangeException.ThrowIfNotEqual(weights.Length, count, nameof(weights));
        ArgumentOutOfRangeException.ThrowIfLessThan(size, count, nameof(size));
        if (!IsPrime(size))
        {
            throw new ArgumentOutOfRangeException(nameof(size), size, "The table size must be a prime, so that every step visits every slot.");
        }

        // The build runs in id-hash order so that the table does not depend on the input order.
        var order = new int[count];
        var sortedHashes = idHashes.ToArray();
        for (var i = 0; i < count; i++)
        {
            order[i] = i;
        }

        Array.Sort(sortedHashes, order);
        var sortedWeights = new int[count];
        var position = new long[count];
        var step = new long[count];
        for (var k = 0; k < count; k++)
        {
            sortedWeights[k] = weights[order[k]];
            position[k] = (long)(RendezvousHash.Mix(sortedHashes[k] ^ OffsetSeed) % (ulong)size);
            step[k] = (long)(RendezvousHash.Mix(sortedHashes[k] ^ StepSeed) % (ulong)(size - 1)) + 1;
        }

        // Everyone claims one slot first, so that no destination is left without clients however small its weight.
        var turns = new EarliestDeadlineFirst(sortedWeights, everyoneFirst: true);
        _slots = new int[size];
        Array.Fill(_slots, -1);
        long probes = 0;
        for (var filled = 0; filled < size; filled++)
        {
            var k = turns.NextUnlocked();
            var slot = position[k];
            while (_slots[slot] >= 0)
            {
                probes++;
                slot += step[k];
                if (slot >= size)
                {
                    slot -= size;
                }
            }

            _slots[slot] = order[k];
            var next = slot + step[k];
            position[k] = next >= size ? next - size : next;
        }

        BuildSteps = probes + size + turns.Comparisons;
    }

    public int Size => _slots.Length;

    /// <summary>Slot probes and turn comparisons the build took: its cost, measured in operations rather than time.</summary>
    public long BuildSteps { get; }

    /// <summary>The index (into the build's input) of the destination that owns <paramref name="key"/>.</summary>
    /// <param name="key">A hashed client address (<see cref="RendezvousHash.HashAddress"/>).</param>
    public int Lookup(ulong key) => _slots[(int)Math.BigMul(key, (ulong)_slots.Length, out _)];

    /// <summary>
    /// The owner of <paramref name="key"/>'s slot if it is in <paramref name="available"/> (a bit per destination index),
    /// else the first available owner along the key's own walk through the slots; -1 when none is within
    /// <paramref name="maxProbes"/> slots.
    /// </summary>
    /// <remarks>
    /// The walk depends only on the key and on which destinations are available, so every process agrees, a key whose
    /// owner stays available never moves, and a key that moved comes back exactly when its owner returns. Each key
    /// steps by its own stride (the size is prime, so any stride visits every slot) rather than to the next slot:
    /// the clients of a destination that is out spread over all the others by their slots, that is by weight,
    /// instead of all landing on the few destinations that own the slots just after its own.
    /// </remarks>
    public int Lookup(ulong key, ReadOnlySpan<ulong> available, int maxProbes)
    {
        var size = _slots.Length;
        var slot = (int)Math.BigMul(key, (ulong)size, out _);
        var owner = _slots[slot];
        if ((available[owner >> 6] & (1UL << owner)) != 0)
        {
            return owner;
        }

        var stride = (int)(RendezvousHash.Mix(key ^ WalkSeed) % (ulong)(size - 1)) + 1;
        for (var probe = 1; probe < maxProbes; probe++)
        {
            slot += stride;
            if (slot >= size)
            {
                slot -= size;
            }

            owner = _slots[slot];
            if ((available[owner >> 6] & (1UL << owner)) != 0)
            {
                return owner;
            }
        }

        return -1;
    }

    /// <summary>
    /// How the IpHash policy finds a key's owner among a cluster's configured destinations while all are available:
    /// rendezvous hashing up to <see cref="MinDestinations"/> destinations, a table above (built here, at once).
    /// </summary>
    public static Func<ulong, int> Picker(ulong[] idHashes, int[] weights)
    {
        if (idHashes.Length <= MinDestinations)
        {
            return key => RendezvousHash.Pick(key, idHashes, weights);
        }

        var table = new MaglevTable(idHashes, weights);
        return table.Lookup;
    }

    /// <summary>How many slots each destination owns, for tests and tools.</summary>
    public int[] SlotCounts(int count)
    {
        var counts = new int[count];
        foreach (var owner in _slots)
        {
            counts[owner]++;
        }

        return counts;
    }

    /// <summary>
    /// The first prime above the power of two that gives each destination at least <see cref="SlotsPerDestination"/>
    /// slots (65,537 at least). Sizes come from this short ladder so that a destination joining or leaving keeps
    /// the size, and with it every other destination's slots; only crossing a power of two rebuilds the mapping.
    /// </summary>
    public static int SizeFor(int count)
    {
        var size = (long)System.Numerics.BitOperations.RoundUpToPowerOf2((ulong)Math.Max(MinSize - 1, (long)count * SlotsPerDestination));
        while (!IsPrime(size))
        {
            size++;
        }

        return checked((int)size);
    }

    private static bool IsPrime(long n)
    {
        if (n < 2 || n % 2 == 0)
        {
            return n == 2;
        }

        for (long d = 3; d * d <= n; d += 2)
        {
            if (n % d == 0)
            {
                return false;
            }
        }

        return true;
    }
}
