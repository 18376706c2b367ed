using System.Net;
using Balancer.Configuration;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Balancer.Hosting;

/// <summary>
/// The proxy and management listeners. Management connections are tagged when accepted, so management
/// paths are answered only there and the proxy listener forwards every path it gets.
/// </summary>
public sealed class Listeners
{
    private static readonly object ManagementTag = new();
    private readonly List<ListenOptions> _proxy = [];
    private readonly List<ListenOptions> _management = [];

    /// <summary>The proxy listener's bound address (the real port once started, even when configured as 0).</summary>
    public Uri ProxyAddress => AddressOf(_proxy);

    /// <summary>The management listener's bound address.</summary>
    public Uri ManagementAddress => AddressOf(_management);

    public static bool IsManagement(HttpContext context) =>
        context.Features.Get<IConnectionItemsFeature>()?.Items.ContainsKey(ManagementTag) == true;

    internal void Configure(KestrelServerOptions kestrel, BalancerOptions options, ProxyConnections connections)
    {
        ApplyLimits(kestrel.Limits, options.Limits);
        _proxy.AddRange(Listen(kestrel, options.Listen, connections.Middleware(options.Limits.MaxConcurrentConnections, options.Limits.RequestHeadersTimeout)));
        _management.AddRange(Listen(kestrel, options.Management.Listen, static next => connection =>
        {
            connection.Items[ManagementTag] = ManagementTag;
            return next(connection);
        }));
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

    private static List<ListenOptions> Listen(KestrelServerOptions kestrel, string text, Func<Microsoft.AspNetCore.Connections.ConnectionDelegate, Microsoft.AspNetCore.Connections.ConnectionDelegate>? middleware)
    {
        if (!ListenAddress.TryParse(text, out var address, out var error))
        {
            throw new InvalidOperationException(error);
        }

        var bound = new List<ListenOptions>();
        void Configure(ListenOptions listen)
        {
            listen.Protocols = HttpProtocols.Http1;
            if (middleware is not null)
            {
                listen.Use(middleware);
            }

            bound.Add(listen);
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

    private static Uri AddressOf(List<ListenOptions> listeners)
    {
        foreach (var listen in listeners)
        {
            if (listen.EndPoint is IPEndPoint endpoint)
            {
                var host = endpoint.Address.Equals(IPAddress.Any) || endpoint.Address.Equals(IPAddress.IPv6Any)
                    ? "127.0.0.1"
                    : endpoint.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{endpoint.Address}]" : endpoint.Address.ToString();
                return new Uri($"http://{host}:{endpoint.Port}/");
            }
        }

        throw new InvalidOperationException("The listener is not bound.");
    }
}
