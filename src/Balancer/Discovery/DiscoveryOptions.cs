namespace Balancer.Discovery;

/// <summary>
/// The <c>Balancer:Discovery</c> section: how destinations marked <c>"Metadata": { "Discovery": "Dns" }</c> are
/// looked up. Read at start-up.
/// </summary>
public sealed class DiscoveryOptions
{
    public const string SectionName = "Discovery";

    /// <summary>How often each name is looked up again; a changed set of addresses is applied at once.</summary>
    public TimeSpan RefreshPeriod { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long one lookup may take before it counts as failed (the last good addresses stay).</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// DNS servers to ask, as <c>address</c> or <c>address:port</c> (<c>[v6]:port</c>); empty: the
    /// <c>nameserver</c> lines of <c>/etc/resolv.conf</c>.
    /// </summary>
    public List<string> NameServers { get; set; } = [];
}
