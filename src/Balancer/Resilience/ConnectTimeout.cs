using System.Globalization;

namespace Balancer.Resilience;

/// <summary>
/// How long the balancer waits for a backend's TCP (and TLS) connection, per cluster, from the cluster's
/// <c>Metadata:ConnectTimeout</c>. YARP's cluster <c>HttpClient</c> settings have no such key and leave
/// .NET's default, which is no timeout at all: a destination that drops connection attempts would hold a
/// request until the activity timeout.
/// </summary>
internal static class ConnectTimeout
{
    public const string MetadataKey = "ConnectTimeout";

    /// <summary>
    /// Loopback and LAN connections take milliseconds and a lost SYN is resent after 1 s, then 3 s; 5 s
    /// allows two resends and then tries another destination.
    /// </summary>
    public static readonly TimeSpan Default = TimeSpan.FromSeconds(5);

    public static TimeSpan Of(IReadOnlyDictionary<string, string>? metadata) =>
        metadata is not null && metadata.TryGetValue(MetadataKey, out var text) && TryParse(text, out var value) ? value : Default;

    public static bool TryParse(string? text, out TimeSpan value) =>
        TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out value) && value > TimeSpan.Zero;
}
