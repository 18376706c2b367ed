namespace Balancer.LoadBalancing;

/// <summary>
/// The load-balancing policy names accepted in a cluster's <c>LoadBalancingPolicy</c>.
/// </summary>
public static class PolicyNames
{
    /// <summary>Smooth weighted round robin (replaces YARP's unweighted built-in of the same name).</summary>
    public static string RoundRobin => nameof(RoundRobin);

    /// <summary>Fewest in-flight requests divided by weight; ties rotate.</summary>
    public static string LeastConnections => nameof(LeastConnections);

    /// <summary>Consistent (rendezvous) hashing of the client IP.</summary>
    public static string IpHash => nameof(IpHash);

    /// <summary>YARP's built-in policies, which keep working under their own names.</summary>
    public static IReadOnlyList<string> YarpBuiltIns { get; } =
        ["PowerOfTwoChoices", "FirstAlphabetical", "Random", "LeastRequests"];

    // After YarpBuiltIns: static initialisers run in textual order.
    private static readonly HashSet<string> Names = new(
        [RoundRobin, LeastConnections, IpHash, .. YarpBuiltIns], StringComparer.OrdinalIgnoreCase);

    /// <summary>Every name a cluster may use, compared case-insensitively as YARP does.</summary>
    public static IReadOnlySet<string> All => Names;

    /// <summary>What YARP uses when a cluster names no policy.</summary>
    public static string Default => "PowerOfTwoChoices";

    /// <summary>
    /// The registered spelling of a policy name (<c>roundrobin</c> reads <c>RoundRobin</c>): YARP compares names
    /// case-insensitively, so it keeps a cluster whose file changed only the case, with the old spelling.
    /// </summary>
    public static string Canonical(string? name) =>
        name is null ? Default : Names.TryGetValue(name, out var registered) ? registered : name;
}
