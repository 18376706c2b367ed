using Microsoft.Extensions.Primitives;

namespace Balancer.Headers;

/// <summary>
/// The fields a message names in its <c>Connection</c> header are meant for the next hop only (RFC 9110
/// section 7.6.1), so a proxy drops them before forwarding. YARP drops the standard hop-by-hop fields but
/// forwards any other field a client or backend names there.
/// </summary>
internal static class ConnectionHeaders
{
    // Framing and the request's identity stay as the forwarder built them: dropping Content-Length or
    // Transfer-Encoding would change how the body is delimited, and YARP manages Host and Upgrade itself.
    // The connection options (close, keep-alive) are not fields at all.
    private static readonly HashSet<string> Kept = new(StringComparer.OrdinalIgnoreCase)
    {
        "close", "keep-alive", "Host", "Content-Length", "Transfer-Encoding", "Upgrade",
    };

    /// <summary>The field names listed in <paramref name="connection"/> that must not be forwarded.</summary>
    public static List<string>? Named(StringValues connection)
    {
        List<string>? names = null;
        foreach (var value in connection)
        {
            if (string.IsNullOrEmpty(value))
            {
                continue;
            }

            foreach (var range in value.AsSpan().Split(','))
            {
                var token = value.AsSpan()[range].Trim(" \t");
                if (token.IsEmpty)
                {
                    continue;
                }

                var name = token.ToString();
                if (!Kept.Contains(name))
                {
                    (names ??= []).Add(name);
                }
            }
        }

        return names;
    }
}
