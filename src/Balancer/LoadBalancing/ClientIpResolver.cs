using System.Net;
using Balancer.Configuration;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace Balancer.LoadBalancing;

/// <summary>
/// Finds the client IP a request stands for: the TCP peer, or, only when that peer is a trusted proxy,
/// the nearest untrusted address in <c>X-Forwarded-For</c> (like NGINX's <c>real_ip_recursive on</c>).
/// </summary>
internal sealed class ClientIpResolver : IDisposable
{
    private const string ForwardedFor = "X-Forwarded-For";
    private readonly IDisposable? _subscription;
    private volatile IPNetwork[] _trusted;

    public ClientIpResolver(IOptionsMonitor<BalancerOptions> options)
    {
        _trusted = Parse(options.CurrentValue.TrustedProxies);
        _subscription = options.OnChange(o => _trusted = Parse(o.TrustedProxies));
    }

    public IPAddress? Resolve(HttpContext context)
    {
        var peer = context.Connection.RemoteIpAddress;
        var trusted = _trusted;
        if (!IsTrustedPeer(peer))
        {
            return peer;
        }

        var header = context.Request.Headers[ForwardedFor];
        if (StringValues.IsNullOrEmpty(header))
        {
            return peer;
        }

        // Walk right to left: each hop appends the address it received from, so the rightmost entry a
        // trusted proxy vouches for is the first one we cannot vouch for ourselves.
        IPAddress? candidate = null;
        for (var v = header.Count - 1; v >= 0; v--)
        {
            var value = header[v].AsSpan();
            while (!value.IsEmpty)
            {
                var comma = value.LastIndexOf(',');
                var entry = value[(comma + 1)..].Trim();
                value = comma < 0 ? [] : value[..comma];
                if (!TryParseEntry(entry, out var address))
                {
                    return candidate ?? peer;
                }

                candidate = Normalize(address);
                if (!IsTrusted(candidate, trusted))
                {
                    return candidate;
                }
            }
        }

        return candidate ?? peer;
    }

    /// <summary>True when <paramref name="peer"/> is in <c>Balancer:TrustedProxies</c>: its forwarding headers are believed.</summary>
    public bool IsTrustedPeer(IPAddress? peer)
    {
        var trusted = _trusted;
        return peer is not null && trusted.Length > 0 && IsTrusted(Normalize(peer), trusted);
    }

    public void Dispose() => _subscription?.Dispose();

    /// <summary>Parses an address or CIDR range; single addresses become a one-address network.</summary>
    public static bool TryParseNetwork(string? text, out IPNetwork network)
    {
        network = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        text = text.Trim();
        if (text.Contains('/'))
        {
            return IPNetwork.TryParse(text, out network);
        }

        if (!IPAddress.TryParse(text, out var address))
        {
            return false;
        }

        address = Normalize(address);
        network = new IPNetwork(address, address.GetAddressBytes().Length * 8);
        return true;
    }

    private static IPNetwork[] Parse(List<string> entries)
    {
        var networks = new List<IPNetwork>(entries.Count);
        foreach (var entry in entries)
        {
            // Invalid entries are rejected by config validation before they get here.
            if (TryParseNetwork(entry, out var network))
            {
                networks.Add(network);
            }
        }

        return [.. networks];
    }

    private static bool IsTrusted(IPAddress address, IPNetwork[] trusted)
    {
        foreach (var network in trusted)
        {
            if (network.Contains(address))
            {
                return true;
            }
        }

        return false;
    }

    private static bool TryParseEntry(ReadOnlySpan<char> entry, out IPAddress address)
    {
        if (IPAddress.TryParse(entry, out address!))
        {
            return true;
        }

        // "[2001:db8::1]:443" and "192.0.2.1:443" forms, which some proxies emit.
        if (entry.Length > 2 && entry[0] == '[')
        {
            var end = entry.IndexOf(']');
            return end > 1 && IPAddress.TryParse(entry[1..end], out address!);
        }

        var colon = entry.IndexOf(':');
        return colon > 0 && colon == entry.LastIndexOf(':') && IPAddress.TryParse(entry[..colon], out address!);
    }

    internal static IPAddress Normalize(IPAddress address) =>
        address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
}
