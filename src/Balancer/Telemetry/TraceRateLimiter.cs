namespace Balancer.Telemetry;

/// <summary>
/// At most a given number of new traces a second, on average, with bursts of up to one second's worth:
/// a token bucket that holds one second of tokens, kept as a single timestamp (the generic cell rate
/// algorithm) so that a decision is one read, and one compare-exchange when it says yes.
/// </summary>
/// <remarks>
/// Why a cap at all: a traced request costs the balancer much more CPU than an untraced one, so tracing
/// every request takes a large share of a saturated balancer's throughput (docs/benchmarks.md). Capped,
/// tracing costs at most the cap times that, whatever the load: every request is traced while traffic is
/// modest, and a steady share of them once it is not.
/// </remarks>
internal sealed class TraceRateLimiter(TimeProvider time)
{
    private volatile Rate? _rate;

    // The time at which the bucket would be full again, in TimeProvider timestamps.
    private long _fullAt = long.MinValue;

    /// <summary>Sets the cap; 0 (or less) takes it away.</summary>
    public void SetLimit(double perSecond)
    {
        if (!(perSecond > 0))
        {
            _rate = null;
            return;
        }

        var frequency = time.TimestampFrequency;
        var interval = (long)Math.Max(1, frequency / perSecond);
        // Below one a second, the bucket still holds one trace.
        _rate = new Rate(interval, Math.Max(frequency, interval));
    }

    /// <summary>Takes one trace from the bucket; false when the cap is reached.</summary>
    public bool TryAcquire()
    {
        if (_rate is not { } rate)
        {
            return true;
        }

        var now = time.GetTimestamp();
        while (true)
        {
            var fullAt = Volatile.Read(ref _fullAt);
            var start = Math.Max(fullAt, now);
            // A full bucket is "start == now"; each trace pushes fullAt one interval further out, and no
            // more than a second of traces may be outstanding.
            if (start + rate.Interval - now > rate.Burst)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _fullAt, start + rate.Interval, fullAt) == fullAt)
            {
                return true;
            }
        }
    }

    /// <param name="Interval">Timestamp ticks one trace takes from the bucket.</param>
    /// <param name="Burst">The bucket's size in timestamp ticks: one second, or one trace if that is longer.</param>
    private sealed record Rate(long Interval, long Burst);
}
