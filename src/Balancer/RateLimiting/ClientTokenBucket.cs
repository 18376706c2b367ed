using System.Threading.RateLimiting;

namespace Balancer.RateLimiting;

/// <summary>
/// A token bucket refilled continuously from a <see cref="TimeProvider"/>: one token every 1/rate seconds,
/// computed from the time elapsed at each acquire. One per client, inside a
/// <see cref="PartitionedRateLimiter{TResource}"/>, which disposes it once <see cref="IdleDuration"/> passes
/// ten seconds.
/// </summary>
/// <remarks>
/// Not <see cref="TokenBucketRateLimiter"/>: it adds whole tokens only when a timer replenishes it (its own
/// timer per partition, or the partitioned limiter's tick every 100 ms), so tokens come in steps rather than
/// one every 1/rate seconds, and it reads the system clock, so no test can step its time exactly.
/// </remarks>
internal sealed class ClientTokenBucket : RateLimiter
{
    private static readonly RateLimitLease Granted = new Lease(true, null);

    private readonly double _perSecond;
    private readonly int _burst;
    private readonly TimeProvider _time;
    private readonly Action? _disposed;
    private readonly Lock _lock = new();
    private double _tokens;
    private long _last;
    private int _isDisposed;

    public ClientTokenBucket(double perSecond, int burst, TimeProvider time, Action? disposed = null)
    {
        _perSecond = perSecond;
        _burst = burst;
        _time = time;
        _disposed = disposed;
        _tokens = burst;
        _last = time.GetTimestamp();
    }

    /// <summary>How long the bucket has been full, or null while it is refilling: full buckets are forgettable.</summary>
    public override TimeSpan? IdleDuration
    {
        get
        {
            lock (_lock)
            {
                var now = _time.GetTimestamp();
                var sinceLast = _time.GetElapsedTime(_last, now).TotalSeconds;
                var fullAfter = (_burst - _tokens) / _perSecond;
                return sinceLast >= fullAfter ? TimeSpan.FromSeconds(sinceLast - fullAfter) : null;
            }
        }
    }

    public override RateLimiterStatistics? GetStatistics()
    {
        lock (_lock)
        {
            Refill();
            return new RateLimiterStatistics { CurrentAvailablePermits = (long)_tokens };
        }
    }

    protected override RateLimitLease AttemptAcquireCore(int permitCount)
    {
        lock (_lock)
        {
            Refill();
            if (_tokens >= permitCount)
            {
                _tokens -= permitCount;
                return Granted;
            }

            return new Lease(false, TimeSpan.FromSeconds((permitCount - _tokens) / _perSecond));
        }
    }

    /// <summary>Never waits: a request over the limit is answered at once, not queued.</summary>
    protected override ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken) =>
        ValueTask.FromResult(AttemptAcquireCore(permitCount));

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Forget();
        }
    }

    /// <summary>The partitioned limiter disposes idle partitions asynchronously, which skips <see cref="Dispose(bool)"/>.</summary>
    protected override ValueTask DisposeAsyncCore()
    {
        Forget();
        return ValueTask.CompletedTask;
    }

    private void Forget()
    {
        if (Interlocked.Exchange(ref _isDisposed, 1) == 0)
        {
            _disposed?.Invoke();
        }
    }

    private void Refill()
    {
        var now = _time.GetTimestamp();
        _tokens = Math.Min(_burst, _tokens + (_time.GetElapsedTime(_last, now).TotalSeconds * _perSecond));
        _last = now;
    }

    private sealed class Lease(bool acquired, TimeSpan? retryAfter) : RateLimitLease
    {
        public override bool IsAcquired => acquired;

        public override IEnumerable<string> MetadataNames => retryAfter is null ? [] : [MetadataName.RetryAfter.Name];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            metadata = retryAfter;
            return retryAfter is not null && metadataName == MetadataName.RetryAfter.Name;
        }
    }
}
