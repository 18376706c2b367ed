using System.Diagnostics.CodeAnalysis;
using System.Net;

namespace Balancer.Discovery;

/// <summary>A DNS server as written in <c>Balancer:Discovery:NameServers</c>: an address, with port 53 unless one is given.</summary>
internal static class NameServer
{
    public static bool TryParse(string? text, [NotNullWhen(true)] out IPEndPoint? server)
    {
        server = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        if (IPAddress.TryParse(text.Trim(), out var address))
        {
            server = new IPEndPoint(address, 53);
            return true;
        }

        return IPEndPoint.TryParse(text.Trim(), out server) && server.Port > 0;
    }
}
