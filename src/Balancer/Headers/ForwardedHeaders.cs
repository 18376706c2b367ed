using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Primitives;

namespace Balancer.Headers;

/// <summary>
/// The values of <c>X-Forwarded-For</c> and RFC 7239 <c>Forwarded</c> sent to a destination: the chain a
/// trusted proxy sent, with this hop's peer appended (NGINX's <c>$proxy_add_x_forwarded_for</c>), or, from
/// anyone else, this hop alone, so a client cannot put words in a trusted proxy's mouth.
/// </summary>
internal static class ForwardedHeaders
{
    public const string XForwardedFor = "X-Forwarded-For";
    public const string Forwarded = "Forwarded";

    /// <summary>The <c>X-Forwarded-For</c> value to send; null when there is no peer address to name.</summary>
    public static string? XForwardedForValue(StringValues incoming, IPAddress? peer, bool trusted)
    {
        if (peer is null)
        {
            return trusted ? Join(incoming) : null;
        }

        var address = LoadBalancing.ClientIpResolver.Normalize(peer).ToString();
        return Append(trusted ? incoming : default, address);
    }

    // The key of a connection's ThisHopCache in its items.
    private static readonly object ThisHopKey = new();

    /// <summary>The two values to send.</summary>
    public readonly record struct Values(string? XForwardedFor, string Forwarded);

    /// <summary>
    /// The values naming this hop alone (no chain to keep), made once per HTTP/1.x connection for as long as
    /// its requests name the same host: the peer and scheme are the connection's, and every request of a
    /// keep-alive connection would otherwise build the same strings again. The streams of an HTTP/2 or
    /// HTTP/3 connection run at once, and the connection's items are not made for that: they build theirs.
    /// </summary>
    public static Values ThisHop(HttpContext context, IPAddress? peer, string scheme, string host)
    {
        var protocol = context.Request.Protocol;
        var items = HttpProtocol.IsHttp11(protocol) || HttpProtocol.IsHttp10(protocol) ? context.Features.Get<IConnectionItemsFeature>()?.Items : null;
        if (items is not null && items.TryGetValue(ThisHopKey, out var kept) && kept is ThisHopCache cache
            && Equals(cache.Peer, peer) && cache.Scheme == scheme && cache.Host == host)
        {
            return cache.Values;
        }

        var values = new Values(XForwardedForValue(default, peer, trusted: false), ForwardedValue(default, peer, trusted: false, scheme, host));
        if (items is not null)
        {
            items[ThisHopKey] = new ThisHopCache(peer, scheme, host, values);
        }

        return values;
    }

    /// <summary>The <c>Forwarded</c> value to send: this hop's element, after the trusted chain if any.</summary>
    public static string ForwardedValue(StringValues incoming, IPAddress? peer, bool trusted, string scheme, string host)
    {
        var element = "for=" + Node(peer) + ";proto=" + scheme;
        if (!string.IsNullOrEmpty(host))
        {
            element += ";host=" + Quote(host);
        }

        return Append(trusted ? incoming : default, element);
    }

    private static string Append(StringValues chain, string element)
    {
        var existing = Join(chain);
        return string.IsNullOrEmpty(existing) ? element : existing + ", " + element;
    }

    private static string? Join(StringValues values)
    {
        string? joined = null;
        foreach (var value in values)
        {
            var trimmed = value?.Trim(' ', '\t', ',');
            if (!string.IsNullOrEmpty(trimmed))
            {
                joined = joined is null ? trimmed : joined + ", " + trimmed;
            }
        }

        return joined;
    }

    // RFC 7239 section 6: IPv6 addresses are bracketed, which makes them quoted strings; an unknown
    // peer is "unknown".
    private static string Node(IPAddress? peer)
    {
        if (peer is null)
        {
            return "unknown";
        }

        var address = LoadBalancing.ClientIpResolver.Normalize(peer);
        return address.AddressFamily == AddressFamily.InterNetworkV6 ? "\"[" + address + "]\"" : address.ToString();
    }

    /// <summary>A token as it is; anything else (a host with a port has a colon) as a quoted string.</summary>
    private static string Quote(string value)
    {
        foreach (var c in value)
        {
            if (!IsTokenChar(c))
            {
                return "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
            }
        }

        return value;
    }

    private static bool IsTokenChar(char c) =>
        char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c, StringComparison.Ordinal);

    private sealed record ThisHopCache(IPAddress? Peer, string Scheme, string Host, Values Values);
}
