namespace Balancer.Telemetry;

/// <summary>
/// Requests and latencies of one destination over the last minute, in one-second slots, for the status
/// API (requests per second over 10 s and second by second over 60 s, p50/p99 over 60 s). Prometheus gets exact counters and the
/// histogram; this is the quick, self-contained view an operator reads without a Prometheus.
/// </summary>
/// <remarks>
/// Writers only increment (Interlocked); the slot of a new second is claimed with one compare-exchange
/// and then cleared, so a handful of increments that race with that clear can be lost once a second.
/// That is acceptable for a live view and keeps locks off the request path. Latencies fall into
/// logarithmic buckets a quarter octave wide (about ±9 %) from 25 µs to several minutes.
/// </remarks>
internal sealed class RollingWindow
{
    public const int Seconds = 60;
    public const int RateSeconds = 10;

    // One slot more than the minute, so the second in progress never reuses the slot of the oldest whole
    // second of the history.
    private const int SlotCount = Seconds + 1;
    private const int BucketCount = 96;
    private const double SmallestMicroseconds = 25;
    private readonly Slot[] _slots = new Slot[SlotCount];

    public RollingWindow()
    {
        for (var i = 0; i < _slots.Length; i++)
        {
            _slots[i] = new Slot();
        }
    }

    /// <summary>Counts one request finished in <paramref name="second"/> that took <paramref name="latencySeconds"/>.</summary>
    public void Record(long second, double latencySeconds)
    {
        var slot = _slots[second % SlotCount];
        var stamp = Volatile.Read(ref slot.Second);
        if (stamp != second && Interlocked.CompareExchange(ref slot.Second, second, stamp) == stamp)
        {
            slot.Clear();
        }

        Interlocked.Increment(ref slot.Count);
        Interlocked.Increment(ref slot.Buckets[BucketOf(latencySeconds)]);
    }

    /// <summary>Average requests per second over the last <see cref="RateSeconds"/> whole seconds before <paramref name="now"/>.</summary>
    public double RequestsPerSecond(long now)
    {
        long total = 0;
        foreach (var slot in _slots)
        {
            var second = Volatile.Read(ref slot.Second);
            if (second < now && second >= now - RateSeconds)
            {
                total += Volatile.Read(ref slot.Count);
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
        foreach (var slot in _slots)
        {
            var age = now - Volatile.Read(ref slot.Second);
            if (age >= 1 && age <= Seconds)
            {
                points[Seconds - age] = Volatile.Read(ref slot.Count);
            }
        }

        return points;
    }

    /// <summary>The latency percentiles (0-1) over the last minute, in milliseconds; null without requests.</summary>
    public (double P50, double P99)? LatencyMilliseconds(long now)
    {
        Span<long> merged = stackalloc long[BucketCount];
        long total = 0;
        foreach (var slot in _slots)
        {
            var second = Volatile.Read(ref slot.Second);
            if (second > now - Seconds && second <= now)
            {
                for (var i = 0; i < BucketCount; i++)
                {
                    var count = Volatile.Read(ref slot.Buckets[i]);
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

    private sealed class Slot
    {
        public readonly long[] Buckets = new long[BucketCount];
        public long Second = -1;
        public long Count;

        public void Clear()
        {
            Volatile.Write(ref Count, 0);
            Array.Clear(Buckets);
        }
    }
}
