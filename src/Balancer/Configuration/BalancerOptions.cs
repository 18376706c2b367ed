namespace Balancer.Configuration;

/// <summary>The <c>Balancer</c> section of the config file.</summary>
public sealed class BalancerOptions
{
    public const string SectionName = "Balancer";

    /// <summary>
    /// Address of the proxy listener, e.g. <c>http://0.0.0.0:8080</c>, when it is one; a list of them is read
    /// with <see cref="ListenAddress.Read"/>. Read at start-up.
    /// </summary>
    public string Listen { get; set; } = "http://127.0.0.1:8080";

    /// <summary>Certificates of the <c>https://</c> listeners, redirect to HTTPS, HSTS, trust for HTTPS backends.</summary>
    public Tls.TlsOptions Tls { get; set; } = new();

    public ManagementOptions Management { get; set; } = new();

    /// <summary>
    /// Socket completions and Kestrel continuations run on the I/O threads (see <c>Hosting.InlineIoScheduling</c>).
    /// Read at start-up.
    /// </summary>
    public bool InlineCompletions { get; set; } = true;

    /// <summary>
    /// The Linux nice value (0-19) of the thread that reads and applies a changed config file: above 0 it gets the
    /// CPU mostly when requests leave it idle, so a large reload slows requests less and takes longer under load.
    /// Reloads live.
    /// </summary>
    public int ReloadNice { get; set; } = LowPriorityThread.DefaultNice;

    /// <summary>
    /// Peers (addresses or CIDR ranges) whose <c>X-Forwarded-For</c> header is believed when finding the
    /// client IP. Empty by default: the TCP peer is the client.
    /// </summary>
    public List<string> TrustedProxies { get; set; } = [];

    /// <summary>Failover of requests that failed at transport level to another destination.</summary>
    public Resilience.RetryOptions Retry { get; set; } = new();

    /// <summary>Ejection backoff and cap for destinations taken out by passive checks.</summary>
    public Health.OutlierDetectionOptions OutlierDetection { get; set; } = new();

    /// <summary>How many active health probes may be on their way at once, over all clusters.</summary>
    public Health.ActiveHealthCheckOptions ActiveHealthChecks { get; set; } = new();

    /// <summary>Per-destination circuit breaker and attempt timeout around every backend call.</summary>
    public Resilience.CircuitBreakerOptions CircuitBreaker { get; set; } = new();

    /// <summary>
    /// On SIGTERM, how long requests in flight may take to finish before their connections are cut. 25 s
    /// ends the drain inside Kubernetes' default 30 s grace period. Read at start-up.
    /// </summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(25);

    /// <summary>DNS discovery of destinations marked <c>"Discovery": "Dns"</c>: refresh period and name servers.</summary>
    public Discovery.DiscoveryOptions Discovery { get; set; } = new();

    /// <summary>Leaving on a signal: how long to keep serving while readiness says no.</summary>
    public Readiness.ShutdownOptions Shutdown { get; set; } = new();

    /// <summary>Request size limits, client timeouts and connection limits of the proxy listener.</summary>
    public Hosting.LimitsOptions Limits { get; set; } = new();

    /// <summary>Sampling of traces while tracing is on.</summary>
    public Telemetry.TracingOptions Tracing { get; set; } = new();

    /// <summary>
    /// Where runtime overrides (drain, maintenance, weight) are saved so that they survive a restart; unset keeps
    /// them in memory only. Read at start-up.
    /// </summary>
    public string? StateFile { get; set; }

    /// <summary>The per-request Prometheus series.</summary>
    public Telemetry.MetricsOptions Metrics { get; set; } = new();

    /// <summary>One JSON line per proxied request; off unless a path is set.</summary>
    public AccessLog.AccessLogOptions AccessLog { get; set; } = new();

    /// <summary>Per-client request rate and concurrency limits; off unless set.</summary>
    public RateLimiting.RateLimitOptions RateLimit { get; set; } = new();
}

/// <summary>The <c>Balancer:Management</c> section.</summary>
public sealed class ManagementOptions
{
    /// <summary>Shortest token accepted: a token is a secret, not a password to remember.</summary>
    public const int MinTokenLength = 16;

    /// <summary>Address of the management listener (metrics, status, page). Read at start-up.</summary>
    public string Listen { get; set; } = "http://127.0.0.1:9091";

    /// <summary>
    /// Bearer token every management request but <c>GET /healthz</c> and <c>GET /readyz</c> must carry, on any address, loopback
    /// included. Usually given as the environment variable <c>Balancer__Management__Token</c>. Reloads live.
    /// </summary>
    public string? Token { get; set; }

    /// <summary>
    /// Without a token, a listener on a non-loopback address answers <c>401</c> to everything but
    /// <c>/healthz</c> and <c>/readyz</c>. True serves it to anyone who reaches it instead: for private networks only (a
    /// compose network, a VM host-only network). Ignored when a token is set.
    /// </summary>
    public bool AllowAnonymous { get; set; }
}
