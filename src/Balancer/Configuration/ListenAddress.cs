using System.Net;
using Microsoft.Extensions.Configuration;

namespace Balancer.Configuration;

/// <summary>
/// A listener address such as <c>http://127.0.0.1:8080</c>, <c>https://*:8443</c>, <c>h2c://127.0.0.1:8081</c>
/// or <c>http://localhost:0</c>.
/// </summary>
/// <remarks>
/// Three schemes, because Kestrel serves HTTP/2 on a cleartext endpoint only when the endpoint speaks nothing
/// else: an endpoint set to HTTP/1.1 and HTTP/2 without TLS falls back to HTTP/1.1 for every connection.
/// <c>http://</c> is HTTP/1.1, <c>h2c://</c> is HTTP/2 with prior knowledge only, <c>https://</c> is both by ALPN.
/// </remarks>
public sealed record ListenAddress(string Host, IPAddress? Address, int Port)
{
    public const string CleartextHttp2Scheme = "h2c";

    /// <summary><c>http</c>, <c>https</c> or <c>h2c</c>.</summary>
    public string Scheme { get; init; } = Uri.UriSchemeHttp;

    /// <summary>True for <c>https://</c>: TLS with the certificates of <c>Balancer:Tls</c>, HTTP/1.1 and HTTP/2 by ALPN.</summary>
    public bool IsHttps => Scheme == Uri.UriSchemeHttps;

    /// <summary>True for <c>h2c://</c>: cleartext HTTP/2 with prior knowledge, no HTTP/1.1.</summary>
    public bool IsCleartextHttp2 => Scheme == CleartextHttp2Scheme;

    /// <summary>True for <c>*</c>, <c>+</c>, <c>0.0.0.0</c> and <c>[::]</c>: every interface.</summary>
    public bool IsAnyAddress => Address is null && Host != "localhost";

    public bool IsLocalhost => Host == "localhost";

    /// <summary>True when only this machine can connect.</summary>
    public bool IsLoopbackOnly => IsLocalhost || (Address is not null && IPAddress.IsLoopback(Address));

    public static bool TryParse(string? text, out ListenAddress? address, out string? error)
    {
        address = null;
        error = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "is empty; expected an address such as http://127.0.0.1:8080";
            return false;
        }

        // Uri refuses '*' and '+' as hosts, so map them to a placeholder first.
        var normalized = text.Trim().Replace("://*", "://any-address", StringComparison.Ordinal)
            .Replace("://+", "://any-address", StringComparison.Ordinal);
        if (!Uri.TryCreate(normalized, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https" or CleartextHttp2Scheme))
        {
            error = $"'{text}' is not an http://, https:// or h2c:// listener address such as http://127.0.0.1:8080";
            return false;
        }

        if (uri.AbsolutePath is not ("/" or "") || !string.IsNullOrEmpty(uri.Query))
        {
            error = $"'{text}' must not have a path";
            return false;
        }

        if (normalized.IndexOf(':', uri.Scheme.Length + 3) < 0)
        {
            error = $"'{text}' has no port";
            return false;
        }

        var host = uri.Host;
        if (host is "any-address")
        {
            address = new ListenAddress("*", null, uri.Port);
        }
        else if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
        {
            address = new ListenAddress("localhost", null, uri.Port);
        }
        else if (IPAddress.TryParse(uri.IdnHost.Trim('[', ']'), out var ip))
        {
            var any = ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any);
            address = any ? new ListenAddress("*", null, uri.Port) : new ListenAddress(ip.ToString(), ip, uri.Port);
        }
        else
        {
            error = $"'{text}': host '{host}' is not an IP address, localhost or *";
            return false;
        }

        address = address with { Scheme = uri.Scheme };
        return true;
    }

    /// <summary>
    /// The texts of a listener key that holds one URL or a list of them (<c>"Listen": ["http://...", "https://..."]</c>),
    /// each with its key for error messages. A plain value wins over list items, so a command-line
    /// <c>--Balancer:Listen URL</c> replaces a list from the file.
    /// </summary>
    public static IReadOnlyList<(string Key, string? Text)> Read(IConfigurationSection section) =>
        section.Value is not null || !section.GetChildren().Any()
            ? [(section.Path, section.Value)]
            : [.. section.GetChildren().Select(child => (child.Path, child.Value))];

    public override string ToString() => $"{Scheme}://{(Address?.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{Host}]" : Host)}:{Port}";
}
