using System.Net;
using Balancer.Configuration;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Balancer.Hosting;

/// <summary>
/// The proxy and management listeners. Management connections are tagged when accepted, so management
/// paths are answered only there and the proxy listener forwards every path it gets.
/// </summary>
public sealed partial class Listeners
{
    private static readonly object ManagementTag = new();
    private readonly List<(ListenOptions Options, ListenAddress Address)> _proxy = [];
    private readonly List<(ListenOptions Options, ListenAddress Address)> _management = [];
    private int _managementOpen;

    /// <summary>The first proxy listener's bound address (the real port once started, even when configured as 0).</summary>
    public Uri ProxyAddress => AddressOf(_proxy);

    /// <summary>The first proxy listener of the scheme (<c>http</c>, <c>https</c> or <c>h2c</c>), or null when there is none.</summary>
    public Uri? ProxyAddressOf(string scheme)
    {
        var matching = _proxy.Where(l => l.Address.Scheme == scheme).ToList();
        return matching.Count == 0 ? null : AddressOf(matching);
    }

    /// <summary>The ports the proxy listeners are bound to (real ports once started).</summary>
    internal IReadOnlySet<int> ProxyPorts() => _proxy.Select(l => l.Options.EndPoint).OfType<IPEndPoint>().Select(e => e.Port).ToHashSet();

    /// <summary>The management listener's bound address.</summary>
    public Uri ManagementAddress => AddressOf(_management);

    public static bool IsManagement(HttpContext context) =>
        context.Features.Get<IConnectionItemsFeature>()?.Items.ContainsKey(ManagementTag) == true;

    /// <summary>The proxy listeners' connection limit in force, once the listeners are configured.</summary>
    internal int ProxyConnectionLimit { get; private set; }

    /// <param name="proxyListen">The texts of <c>Balancer:Listen</c> (one URL or a list).</param>
    /// <param name="certificates">Serves the <c>https://</c> listeners; resolved only when there is one.</param>
    internal void Configure(KestrelServerOptions kestrel, BalancerOptions options, IEnumerable<string> proxyListen, ProxyConnections connections, Func<Tls.CertificateStore> certificates, BackendSockets backends, ILogger logger)
    {
        ApplyLimits(kestrel.Limits, options.Limits);
        ProxyConnectionLimit = ConnectionLimit(options.Limits.MaxConcurrentConnections, DescriptorBudget.Measure(), logger);
        backends.SetLimit(ProxyConnectionLimit);
        // One counting middleware for all proxy listeners: the connection limit is the proxy's, not each listener's.
        var counting = connections.Middleware(ProxyConnectionLimit, options.Limits.RequestHeadersTimeout);
        foreach (var text in proxyListen)
        {
            _proxy.AddRange(Listen(kestrel, text, counting, certificates));
        }

        _management.AddRange(Listen(kestrel, options.Management.Listen, next => async connection =>
        {
            // Its descriptors are kept out of the proxy's share; past them, close rather than take more.
            try
            {
                if (Interlocked.Increment(ref _managementOpen) <= DescriptorBudget.ManagementConnections)
                {
                    connection.Items[ManagementTag] = ManagementTag;
                    await next(connection);
                }
            }
            finally
            {
                Interlocked.Decrement(ref _managementOpen);
            }
        }, certificates));
    }

    /// <summary>
    /// The configured limit, or the one the descriptor budget allows; the figures are logged once. A
    /// configured limit that does not fit is lowered to what fits, with a warning: past the open-file limit
    /// the runtime cannot start a thread and aborts the process.
    /// </summary>
    internal static int ConnectionLimit(int? configured, DescriptorBudget budget, ILogger logger)
    {
        var limit = configured ?? budget.ProxyConnections;
        if (configured is { } set && budget.Needed(set) > budget.SoftLimit)
        {
            LogDoesNotFit(logger, set, budget.Needed(set), budget.SoftLimit, budget.ProxyConnections);
            limit = budget.ProxyConnections;
        }

        LogBudget(logger, budget.SoftLimit, budget.HardLimit, budget.InUseAtStart, budget.Reserved, limit, configured is null ? "derived from the open-file limit" : "Balancer:Limits:MaxConcurrentConnections");
        return limit;
    }

    /// <summary>
    /// Kestrel's limits are server-wide: the management listener gets them too, which costs it nothing (it
    /// takes no bodies and small headers). The connection limit is the proxy listener's own (<see cref="ProxyConnections"/>).
    /// </summary>
    private static void ApplyLimits(KestrelServerLimits kestrel, LimitsOptions limits)
    {
        kestrel.MaxRequestHeadersTotalSize = limits.MaxRequestHeadersTotalSize;
        kestrel.MaxRequestHeaderCount = limits.MaxRequestHeaderCount;
        kestrel.MaxRequestLineSize = limits.MaxRequestLineSize;
        kestrel.MaxRequestBodySize = limits.MaxRequestBodySize;
        kestrel.RequestHeadersTimeout = limits.RequestHeadersTimeout;
        kestrel.KeepAliveTimeout = limits.KeepAliveTimeout;
        kestrel.MinRequestBodyDataRate = limits.MinRequestBodyDataRate > 0
            ? new MinDataRate(limits.MinRequestBodyDataRate, limits.MinRequestBodyDataRateGracePeriod)
            : null;
        kestrel.MinResponseDataRate = limits.MinResponseDataRate > 0
            ? new MinDataRate(limits.MinResponseDataRate, limits.MinResponseDataRateGracePeriod)
            : null;
        kestrel.MaxConcurrentConnections = null;
        kestrel.MaxConcurrentUpgradedConnections = limits.MaxConcurrentUpgradedConnections;
    }

    private static List<(ListenOptions, ListenAddress)> Listen(
        KestrelServerOptions kestrel,
        string text,
        Func<Microsoft.AspNetCore.Connections.ConnectionDelegate, Microsoft.AspNetCore.Connections.ConnectionDelegate>? middleware,
        Func<Tls.CertificateStore> certificates)
    {
        if (!ListenAddress.TryParse(text, out var address, out var error))
        {
            throw new InvalidOperationException(error);
        }

        var parsed = address!;
        var bound = new List<(ListenOptions, ListenAddress)>();
        void Configure(ListenOptions listen)
        {
            // Cleartext HTTP/2 only on its own endpoints: Kestrel answers HTTP/1.1 alone on a cleartext
            // endpoint that allows both (there is no ALPN to choose by).
            listen.Protocols = parsed.IsHttps ? HttpProtocols.Http1AndHttp2
                : parsed.IsCleartextHttp2 ? HttpProtocols.Http2
                : HttpProtocols.Http1;
            if (middleware is not null)
            {
                // Before TLS: a connection counts from accept, handshake included.
                listen.Use(middleware);
            }

            if (parsed.IsHttps)
            {
                var store = certificates();
                listen.UseHttps(new Microsoft.AspNetCore.Server.Kestrel.Https.TlsHandshakeCallbackOptions { OnConnection = store.OnConnection });
            }

            bound.Add((listen, parsed));
        }

        if (address!.IsAnyAddress)
        {
            kestrel.ListenAnyIP(address.Port, Configure);
        }
        else if (address.IsLocalhost && address.Port != 0)
        {
            kestrel.ListenLocalhost(address.Port, Configure);
        }
        else
        {
            // Kestrel cannot bind "localhost" to a dynamic port, so port 0 means IPv4 loopback.
            kestrel.Listen(address.Address ?? IPAddress.Loopback, address.Port, Configure);
        }

        return bound;
    }

    [LoggerMessage(EventId = 1602, Level = LogLevel.Information,
        Message = "Open-file limit {Soft} (hard {Hard}): {InUse} in use at start-up, {Reserved} kept for the runtime, the management listener and turned-away clients; proxy connections limited to {Limit} ({Source}), each may hold a client and a backend descriptor")]
    private static partial void LogBudget(ILogger logger, long soft, long hard, int inUse, int reserved, int limit, string source);

    [LoggerMessage(EventId = 1603, Level = LogLevel.Warning,
        Message = "Balancer:Limits:MaxConcurrentConnections is {Configured}, which needs up to {Needed} open files, but the open-file limit is {Soft}: at most {Fits} proxy connections fit. Using {Fits}; raise the open-file limit (ulimit -n, LimitNOFILE) or lower the setting")]
    private static partial void LogDoesNotFit(ILogger logger, int configured, long needed, long soft, int fits);

    private static Uri AddressOf(List<(ListenOptions Options, ListenAddress Address)> listeners)
    {
        foreach (var (listen, address) in listeners)
        {
            if (listen.EndPoint is IPEndPoint endpoint)
            {
                var host = endpoint.Address.Equals(IPAddress.Any) || endpoint.Address.Equals(IPAddress.IPv6Any)
                    ? "127.0.0.1"
                    : endpoint.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{endpoint.Address}]" : endpoint.Address.ToString();
                // h2c is HTTP/2 over http:// URLs; clients know it by prior knowledge, not by the scheme.
                return new Uri($"{(address.IsHttps ? "https" : "http")}://{host}:{endpoint.Port}/");
            }
        }

        throw new InvalidOperationException("The listener is not bound.");
    }
}
