using System.Net.Sockets;

namespace Balancer.Readiness;

/// <summary>
/// Lets a listening socket's connections keep sending from their local address once it is no longer
/// assigned to this host. When keepalived moves a floating address away, the kernel refuses to route
/// packets from it, so a request received just before the move would never get its answer and the client
/// would wait out its timeout. A transparent socket may send from any address; accepted connections inherit
/// the flag from the listener. Nothing changes for what the socket receives: without TPROXY rules only
/// local addresses reach it, and the flag is set after bind, so binding to an address this host does not
/// have still fails.
/// </summary>
internal static partial class MovedAddressAnswers
{
    // Linux <netinet/in.h>: IP_TRANSPARENT at level SOL_IP, IPV6_TRANSPARENT at level SOL_IPV6.
    private const int SolIp = 0;
    private const int IpTransparent = 19;
    private const int SolIpv6 = 41;
    private const int Ipv6Transparent = 75;

    /// <summary>Marks <paramref name="listener"/> transparent; logs a warning and leaves it as it was when not permitted.</summary>
    public static void Allow(Socket listener, ILogger logger)
    {
        if (!OperatingSystem.IsLinux())
        {
            LogUnsupported(logger, listener.LocalEndPoint?.ToString());
            return;
        }

        var (level, name) = listener.AddressFamily == AddressFamily.InterNetworkV6 ? (SolIpv6, Ipv6Transparent) : (SolIp, IpTransparent);
        try
        {
            listener.SetRawSocketOption(level, name, BitConverter.GetBytes(1));
        }
        catch (SocketException e)
        {
            LogNotPermitted(logger, listener.LocalEndPoint?.ToString(), e.Message);
        }
    }

    [LoggerMessage(EventId = 1311, Level = LogLevel.Warning, Message = "Balancer:Shutdown:FloatingAddress: cannot make {Endpoint} transparent ({Reason}); give the process CAP_NET_RAW, or requests in flight when a floating address moves away will time out")]
    private static partial void LogNotPermitted(ILogger logger, string? endpoint, string reason);

    [LoggerMessage(EventId = 1312, Level = LogLevel.Warning, Message = "Balancer:Shutdown:FloatingAddress is Linux only; ignored for {Endpoint}")]
    private static partial void LogUnsupported(ILogger logger, string? endpoint);
}
