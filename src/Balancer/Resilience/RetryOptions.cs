namespace Balancer.Resilience;

/// <summary>The <c>Balancer:Retry</c> section: failover of a failed request to another destination.</summary>
public sealed class RetryOptions
{
    /// <summary>Extra attempts after the first, each on a destination not tried yet. 0 turns failover off.</summary>
    public int MaxAttempts { get; set; } = 2;

    /// <summary>
    /// Largest request body (by <c>Content-Length</c>) kept in memory so that it can be replayed. Bigger
    /// bodies, and bodies of unknown length, are streamed and never retried.
    /// </summary>
    public long MaxBufferedBodyBytes { get; set; } = 64 * 1024;

    /// <summary>
    /// gRPC calls are retried like idempotent requests (GET, PUT): after a refused or failed connection, a
    /// reset or a timeout, as long as no response had started and the request body read so far fits in
    /// <see cref="MaxBufferedBodyBytes"/> (kept as it streams, since gRPC bodies have no length). False treats
    /// them like POST: retried only when nothing reached the destination. Turn it off for services whose
    /// methods must not run twice.
    /// </summary>
    public bool GrpcIdempotent { get; set; } = true;
}

/// <summary>The <c>Balancer:CircuitBreaker</c> section: per-destination breaker in front of every backend call.</summary>
public sealed class CircuitBreakerOptions
{
    /// <summary>Off turns the breaker and the attempt timeout off (the handler is not installed).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Share of failed calls (transport errors, timeouts, 502/503/504) in the window that opens the circuit.</summary>
    public double FailureRatio { get; set; } = 0.5;

    /// <summary>Calls needed in the window before the ratio counts, so one failure in a quiet period opens nothing.</summary>
    public int MinimumThroughput { get; set; } = 20;

    public TimeSpan SamplingDuration { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long an open circuit stays open; the destination is also marked down for this long.</summary>
    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Optional upper bound for one attempt up to the response headers, on top of the cluster's
    /// <c>HttpRequest:ActivityTimeout</c>; whichever is shorter wins, and both give the client 504. Unset by
    /// default: ActivityTimeout already does this job, and a second timer per request costs throughput.
    /// </summary>
    public TimeSpan? AttemptTimeout { get; set; }
}
