namespace Balancer.Telemetry;

/// <summary>
/// The labels of the counters of rare per-destination events (retries, health changes), all known in advance:
/// <see cref="DestinationEventCounts"/> exposes every destination's series at 0 when the destination appears, so a
/// dashboard shows "0 retries" from start-up instead of no data until the first one.
/// </summary>
internal static class DestinationEvents
{
    /// <summary>The <c>reason</c> values of <c>balancer_retries_total</c>: the transport failures a retry follows.</summary>
    public static readonly string[] RetryReasons = ["refused", "connect", "reset", "timeout", "circuit_open", "marked_down"];

    /// <summary>The <c>to</c> values of <c>balancer_destination_health_transitions_total</c>.</summary>
    public static readonly string[] HealthStates = ["up", "down", "unknown"];

    public const string RetriesHelp = "Requests sent again to another destination after a transport failure, by the destination that failed and why.";

    public const string HealthTransitionsHelp = "Changes of a destination's health as operators see it (up, down, unknown).";
}
