using System.Net;

namespace Balancer.Configuration;

/// <summary>A listener address such as <c>http://127.0.0.1:8080</c>, <c>http://*:80</c> or <c>http://localhost:0</c>.</summary>
public sealed record ListenAddress(string Host, IPAddress? Address, int Port)
{
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
        if (!Uri.TryCreate(normalized, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttp)
        {
            error = $"'{text}' is not an http:// listener address such as http://127.0.0.1:8080";
            return false;
        }

        if (uri.AbsolutePath != "/" || !string.IsNullOrEmpty(uri.Query))
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

        return true;
    }

    public override string ToString() => $"http://{(Address?.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{Host}]" : Host)}:{Port}";
}
