namespace Balancer.Readiness;

/// <summary>The <c>Balancer:Shutdown</c> section: how the instance leaves.</summary>
public sealed class ShutdownOptions
{
    public const string SectionName = "Shutdown";

    /// <summary>
    /// After SIGTERM (or SIGINT), how long <c>/readyz</c> answers 503 while the proxy still serves new and
    /// in-flight requests, before it stops accepting and drains (<c>Balancer:ShutdownTimeout</c>). Long enough
    /// for keepalived's track script or a Kubernetes endpoint update to move clients to a peer. Zero stops
    /// accepting at once. Read at start-up.
    /// </summary>
    public TimeSpan DrainDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// This instance serves an address that moves between peers (keepalived's floating address). Connections
    /// accepted on it can still send their answers after the address moved away, so requests in flight at the
    /// move complete instead of timing out (Linux: <c>IP_TRANSPARENT</c> on the listening sockets, which needs
    /// <c>CAP_NET_RAW</c> or <c>CAP_NET_ADMIN</c>; without it a warning is logged). Read at start-up.
    /// </summary>
    public bool FloatingAddress { get; set; }

    /// <summary>
    /// A file keepalived watches with <c>track_file</c> (weight 0): the balancer writes 0 once it serves, and 1
    /// when it leaves (a signal, or <c>POST /api/instance/drain</c>) after its proxy listeners have stopped taking
    /// new connections for a moment, so that the floating address moves at once and no connection is caught
    /// half-open by the move; 0 again on <c>POST /api/instance/enable</c>. Unset: keepalived learns of the leave
    /// from its track script on <c>/readyz</c>. Read at start-up.
    /// </summary>
    public string? TrackFile { get; set; }
}
