using System.IO.Hashing;
using System.Net;
using System.Text;

namespace Balancer.LoadBalancing;

/// <summary>
/// Weighted rendezvous (highest random weight) hashing, the picking logic of the IpHash policy.
/// </summary>
/// <remarks>
/// Chosen over Maglev because our clusters are small (a handful of destinations), where scoring every
/// destination per request costs a few nanoseconds and needs no lookup table to rebuild on membership
/// changes. It also gives the exact guarantees the policy promises: removing a destination moves only the
/// keys it owned (Maglev moves a few others too), re-adding it restores the previous mapping exactly, and
/// the result depends only on the set of destination ids, never on their order. Hashes are XxHash3 with a
/// fixed seed, so every process with the same config agrees.
/// </remarks>
public static class RendezvousHash
{
    /// <summary>Stable 64-bit hash of a destination id.</summary>
    public static ulong HashId(string destinationId)
    {
        // Snapshots of large clusters hash every id: short ones (nearly all) without an allocation.
        const int StackLimit = 256;
        var length = Encoding.UTF8.GetMaxByteCount(destinationId.Length);
        Span<byte> bytes = length <= StackLimit ? stackalloc byte[StackLimit] : new byte[length];
        var written = Encoding.UTF8.GetBytes(destinationId, bytes);
        return XxHash3.HashToUInt64(bytes[..written]);
    }

    /// <summary>
    /// Stable 64-bit hash of an IP address. IPv4-mapped IPv6 addresses hash as their IPv4 form, so a
    /// dual-stack listener maps a client the same way whichever socket family accepted it.
    /// </summary>
    public static ulong HashAddress(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        if (!address.TryWriteBytes(bytes, out var written))
        {
            return 0;
        }

        var span = bytes[..written];
        if (written == 16 && address.IsIPv4MappedToIPv6)
        {
            span = span[12..];
        }

        return XxHash3.HashToUInt64(span);
    }

    /// <summary>Returns the index of the destination that owns <paramref name="key"/>.</summary>
    /// <param name="key">The hashed client address.</param>
    /// <param name="destinationHashes">The hashed ids of the candidates.</param>
    /// <param name="weights">Their weights (all 1 for an unweighted set).</param>
    public static int Pick(ulong key, ReadOnlySpan<ulong> destinationHashes, ReadOnlySpan<int> weights)
    {
        var best = 0;
        var bestScore = double.NegativeInfinity;
        for (var i = 0; i < destinationHashes.Length; i++)
        {
            var score = Score(key, destinationHashes[i], weights[i]);
            // Ties (practically impossible with 64-bit hashes) go to the larger id hash so that the
            // outcome never depends on the order of the candidates.
            if (score > bestScore || (score == bestScore && destinationHashes[i] > destinationHashes[best]))
            {
                best = i;
                bestScore = score;
            }
        }

        return best;
    }

    /// <summary>
    /// <see cref="Pick(ulong, ReadOnlySpan{ulong}, ReadOnlySpan{int})"/> over only the destinations whose bit is set in
    /// <paramref name="included"/>: the same answer as over an array of just those, since the outcome never depends on
    /// the candidates' order. Returns -1 when none is included.
    /// </summary>
    public static int Pick(ulong key, ReadOnlySpan<ulong> destinationHashes, ReadOnlySpan<int> weights, ReadOnlySpan<ulong> included)
    {
        var best = -1;
        var bestScore = double.NegativeInfinity;
        for (var word = 0; word < included.Length; word++)
        {
            for (var bits = included[word]; bits != 0; bits &= bits - 1)
            {
                var i = (word << 6) + System.Numerics.BitOperations.TrailingZeroCount(bits);
                var score = Score(key, destinationHashes[i], weights[i]);
                if (best < 0 || score > bestScore || (score == bestScore && destinationHashes[i] > destinationHashes[best]))
                {
                    best = i;
                    bestScore = score;
                }
            }
        }

        return best;
    }

    /// <summary>
    /// Weighted HRW score: -w / ln(u) with u uniform in (0, 1) derived from the pair's hash, so that a
    /// destination's share of keys is proportional to its weight (Schindelhauer and Schomaker).
    /// </summary>
    private static double Score(ulong key, ulong destination, int weight)
    {
        var mixed = Mix(key ^ Mix(destination));
        // 53 random bits mapped into the open interval (0, 1).
        var unit = ((mixed >> 11) + 0.5) * (1.0 / (1UL << 53));
        return weight == 1 ? -1.0 / Math.Log(unit) : -weight / Math.Log(unit);
    }

    /// <summary>MurmurHash3's 64-bit finaliser: a cheap bijective mix with full avalanche.</summary>
    internal static ulong Mix(ulong x)
    {
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdUL;
        x ^= x >> 33;
        x *= 0xc4ceb93fe53ec53bUL;
        x ^= x >> 33;
        return x;
    }
}
