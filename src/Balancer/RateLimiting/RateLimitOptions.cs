namespace Balancer.RateLimiting;

/// <summary>
/// The <c>Balancer:RateLimit</c> section: limits per client IP (as <c>Balancer:TrustedProxies</c> resolves
/// it), off unless set. Over a limit a request gets <c>429</c> with <c>Retry-After</c> and no backend sees
/// it. Reloads live. A route can have its own values in its metadata (<see cref="RouteMetadataPrefix"/>).
/// </summary>
public sealed class RateLimitOptions
{
    public const string SectionName = "RateLimit";

    /// <summary>Route metadata keys <c>RateLimit.RequestsPerSecond</c>, <c>RateLimit.Burst</c>, <c>RateLimit.MaxConcurrentPerClient</c>.</summary>
    public const string RouteMetadataPrefix = "RateLimit.";

    /// <summary>
    /// Sustained requests a second per client; 0 (the default) for no rate limit. The bucket gains one token
    /// every 1/RequestsPerSecond seconds, continuously (as NGINX's <c>limit_req</c>), not a second's worth at once.
    /// </summary>
    public double RequestsPerSecond { get; set; }

    /// <summary>
    /// Requests a client may send at once after being quiet: the bucket's size. 0 (the default) means one
    /// second's worth, <see cref="RequestsPerSecond"/> rounded up.
    /// </summary>
    public int Burst { get; set; }

    /// <summary>Requests of one client in flight at once; 0 (the default) for no limit.</summary>
    public int MaxConcurrentPerClient { get; set; }
}
