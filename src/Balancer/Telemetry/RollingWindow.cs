namespace Balancer.Telemetry;

/// <summary>
/// Requests and latencies of one destination over the last minute, for the status API: requests per second
/// over 10 s and second by second over 60 s, p50/p99 over the last minute in 10-second steps. Prometheus gets
/// exact counters and the histogram; this is the quick, self-contained view an operator reads without a Prometheus.
/// </summary>
/// <remarks>
/// Writers only increment (Interlocked); the slot of a new second (or latency block) is claimed with one
/// compare-exchange and then cleared, so a handful of increments that race with that clear can be lost. That is
/// acceptable for a live view and keeps locks off the request path. Latencies fall into logarithmic buckets a
/// quarter octave wide (about ±9 %) from 25 µs to several minutes. The buckets are kept per 10-second block,
/// not per second, and as 32-bit counts: a cluster of thousands of destinations holds one window each, and
/// per-second buckets would cost about 50 KB per destination for a figure read as a minute's percentiles.
/// </remarks>
internal sealed class RollingWindow
{
    public const int Seconds = 60;
    public const int RateSeconds = 10;

    /// <summary>The width of a latency block; the percentiles cover the block in progress and the five before it.</summary>
    public const int LatencyBlockSeconds = 10;

    // One slot more than the minute, so the second in progress never reuses the slot of the oldest whole
    // second of the history; likewise one latency block more than the minute holds.
    private const int SlotCount = Seconds + 1;
    private const int BlocksKept = Seconds / LatencyBlockSeconds;
    private const int BlockCount = BlocksKept + 1;
    private const int BucketCount = 96;
    private const double SmallestMicroseconds = 25;
    private readonly long[] _slotSeconds = new long[SlotCount];
    private readonly long[] _slotCounts = new long[SlotCount];
    private readonly long[] _blockStarts = new long[BlockCount];

    // Allocated at the first request: most destinations of a large, idle cluster never need it.
    private int[]? _buckets;

    public RollingWindow()
    {
        Array.Fill(_slotSeconds, -1);
        Array.Fill(_blockStarts, -1);
    }

    /// <summary>Counts one request finished in <paramref name="second"/> that took <paramref name="latencySeconds"/>.</summary>
    public void Record(long second, double latencySeconds)
    {
        var slot = (int)(second % SlotCount);
        var stamp = Volatile.Read(ref _slotSeconds[slot]);
        if (stamp != second && Interlocked.CompareExchange(ref _slotSeconds[slot], second, stamp) == stamp)
        {
            Volatile.Write(ref _slotCounts[slot], 0);
        }

        Interlocked.Increment(ref _slotCounts[slot]);

        var buckets = _buckets ?? Buckets();
        var start = second / LatencyBlockSeconds;
        var block = (int)(start % BlockCount);
        var blockStamp = Volatile.Read(ref _blockStarts[block]);
        if (blockStamp != start && Interlocked.CompareExchange(ref _blockStarts[block], start, blockStamp) == blockStamp)
        {
            Array.Clear(buckets, block * BucketCount, BucketCount);
        }

        Interlocked.Increment(ref buckets[(block * BucketCount) + BucketOf(latencySeconds)]);
    }

    /// <summary>Average requests per second over the last <see cref="RateSeconds"/> whole seconds before <paramref name="now"/>.</summary>
    public double RequestsPerSecond(long now)
    {
        long total = 0;
        for (var slot = 0; slot < SlotCount; slot++)
        {
            var second = Volatile.Read(ref _slotSeconds[slot]);
            if (second < now && second >= now - RateSeconds)
            {
                total += Volatile.Read(ref _slotCounts[slot]);
            }
        }

        return total / (double)RateSeconds;
    }

    /// <summary>
    /// Requests finished in each of the <see cref="Seconds"/> whole seconds before <paramref name="now"/>, oldest
    /// first: the status page draws its chart from it as soon as it opens.
    /// </summary>
    public long[] RequestsPerSecondHistory(long now)
    {
        var points = new long[Seconds];
        for (var slot = 0; slot < SlotCount; slot++)
        {
            var age = now - Volatile.Read(ref _slotSeconds[slot]);
            if (age >= 1 && age <= Seconds)
            {
                points[Seconds - age] = Volatile.Read(ref _slotCounts[slot]);
            }
        }

        return points;
    }

    /// <summary>
    /// The latency percentiles (0-1) over the 10-second block in progress and the five before it, in
    /// milliseconds; null without requests.
    /// </summary>
    public (double P50, double P99)? LatencyMilliseconds(long now)
    {
        if (Volatile.Read(ref _buckets) is not { } buckets)
        {
            return null;
        }

        Span<long> merged = stackalloc long[BucketCount];
        long total = 0;
        var current = now / LatencyBlockSeconds;
        for (var block = 0; block < BlockCount; block++)
        {
            var start = Volatile.Read(ref _blockStarts[block]);
            if (start > current - BlocksKept && start <= current)
            {
                for (var i = 0; i < BucketCount; i++)
                {
                    long count = Volatile.Read(ref buckets[(block * BucketCount) + i]);
                    merged[i] += count;
                    total += count;
                }
            }
        }

        return total == 0 ? null : (Percentile(merged, total, 0.50), Percentile(merged, total, 0.99));
    }

    internal static int BucketOf(double latencySeconds)
    {
        var microseconds = latencySeconds * 1e6;
        if (!(microseconds > SmallestMicroseconds))
        {
            return 0;
        }

        var index = (int)(4 * Math.Log2(microseconds / SmallestMicroseconds));
        return index >= BucketCount ? BucketCount - 1 : index;
    }

    /// <summary>The geometric middle of a bucket, in milliseconds.</summary>
    internal static double MillisecondsOf(int bucket) => SmallestMicroseconds * Math.Pow(2, (bucket + 0.5) / 4) / 1000;

    private int[] Buckets()
    {
        Interlocked.CompareExchange(ref _buckets, new int[BlockCount * BucketCount], null);
        return _buckets;
    }

    private static double Percentile(ReadOnlySpan<long> buckets, long total, double quantile)
    {
        // The smallest bucket whose cumulative count reaches the rank.
        var rank = (long)Math.Ceiling(quantile * total);
        long cumulative = 0;
        for (var i = 0; i < buckets.Length; i++)
        {
            cumulative += buckets[i];
            if (cumulative >= rank)
            {
                return MillisecondsOf(i);
            }
        }

        return MillisecondsOf(buckets.Length - 1);
    }
}
