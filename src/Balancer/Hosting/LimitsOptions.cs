namespace Balancer.Hosting;

/// <summary>
/// The <c>Balancer:Limits</c> section: what a client may send and how slowly, chosen like NGINX's defaults so
/// that anything a browser or an API client sends passes, and slow or oversized clients cannot hold the
/// proxy. Read at start-up.
/// </summary>
public sealed class LimitsOptions
{
    public const string SectionName = "Limits";

    /// <summary>
    /// All request headers together, in bytes; more gives <c>431</c>. 32 KiB is NGINX's largest header
    /// block (<c>large_client_header_buffers 4 8k</c>) and Kestrel's default: far above what browsers send
    /// with cookies (a few KiB), small enough that a 70 kB header is refused before any backend sees it.
    /// </summary>
    public int MaxRequestHeadersTotalSize { get; set; } = 32 * 1024;

    /// <summary>Number of request headers; more gives <c>431</c>. Kestrel's default; NGINX has no count limit.</summary>
    public int MaxRequestHeaderCount { get; set; } = 100;

    /// <summary>
    /// The request line (method, URL, version), in bytes; longer gives <c>414</c>. 8 KiB: NGINX refuses a
    /// request line that does not fit one 8k header buffer, and Kestrel's default is the same.
    /// </summary>
    public int MaxRequestLineSize { get; set; } = 8 * 1024;

    /// <summary>
    /// Request body, in bytes; a larger <c>Content-Length</c> gives <c>413</c> before anything is sent to a
    /// backend, and a chunked body is cut with <c>413</c> when it passes the limit. 16 MiB: NGINX's 1 MiB
    /// (<c>client_max_body_size</c>) is the default operators raise first; the papers' uploads are 64 KB.
    /// </summary>
    public long MaxRequestBodySize { get; set; } = 16 * 1024 * 1024;

    /// <summary>
    /// Time a client has to send all of a request's headers, from its first byte; slower gives <c>408</c>
    /// and the connection is closed. 10 s instead of NGINX's 60 s (<c>client_header_timeout</c>): real
    /// clients send their headers in one packet, and a slowloris connection is held at most this long.
    /// </summary>
    public TimeSpan RequestHeadersTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long an idle keep-alive connection stays open. NGINX's 75 s: longer than the 60 s idle timeout
    /// of the cloud load balancers that may sit in front, so they never reuse a connection we just closed.
    /// </summary>
    public TimeSpan KeepAliveTimeout { get; set; } = TimeSpan.FromSeconds(75);

    /// <summary>
    /// Slowest request body upload tolerated, in bytes per second, after <see cref="MinRequestBodyDataRateGracePeriod"/>;
    /// slower is cut (<c>408</c>). Kestrel's 240 B/s: a dial-up modem is faster. 0 turns the check off.
    /// </summary>
    public double MinRequestBodyDataRate { get; set; } = 240;

    public TimeSpan MinRequestBodyDataRateGracePeriod { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Slowest response download tolerated, in bytes per second, after <see cref="MinResponseDataRateGracePeriod"/>;
    /// a client reading slower is disconnected (slow-read attacks). Kestrel's 240 B/s. 0 turns the check off.
    /// </summary>
    public double MinResponseDataRate { get; set; } = 240;

    public TimeSpan MinResponseDataRateGracePeriod { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Open client connections on the proxy listener; one more is answered <c>503</c> and closed. Unset (the
    /// default), it is derived from the open-file limit at start-up: half of what is left after the
    /// descriptors the runtime, the management listener and turned-away clients need (<see cref="DescriptorBudget"/>),
    /// since each client connection can hold a backend connection too. A value that does not fit that limit
    /// is lowered to what fits, with a warning at start-up naming both numbers. The management listener has its own small limit, so metrics and status stay
    /// reachable while the proxy is flooded.
    /// </summary>
    public int? MaxConcurrentConnections { get; set; }

    /// <summary>
    /// Connections upgraded to another protocol (WebSockets), which stay open for their whole session.
    /// Kestrel's default of 100 is low for a front door; 1000 here.
    /// </summary>
    public int MaxConcurrentUpgradedConnections { get; set; } = 1000;
}
