namespace Balancer.Runtime;

/// <summary>What an operator set on a destination at runtime.</summary>
public enum AdminMode
{
    /// <summary>In service: the file and health decide.</summary>
    Active,

    /// <summary>No new requests; those in flight finish.</summary>
    Drain,

    /// <summary>Drained, and not probed either.</summary>
    Maintenance,
}

/// <summary>The runtime state names of the contract (<c>state</c> in <c>/status</c>).</summary>
public static class DestinationRuntimeState
{
    public const string Active = "Active";
    public const string Draining = "Draining";
    public const string Drained = "Drained";
    public const string Maintenance = "Maintenance";

    /// <summary>The value of the <c>balancer_destination_state</c> gauge for each state.</summary>
    public static int Code(string state) => state switch
    {
        Draining => 1,
        Drained => 2,
        Maintenance => 3,
        _ => 0,
    };

    /// <summary>The state an operator's mode amounts to with <paramref name="inFlight"/> requests still running.</summary>
    public static string Of(AdminMode mode, int inFlight) => mode switch
    {
        AdminMode.Drain => inFlight > 0 ? Draining : Drained,
        AdminMode.Maintenance => Maintenance,
        _ => Active,
    };
}

/// <summary>An operator's override of one destination: its mode and weight, and who set it when.</summary>
public sealed record DestinationOverride(AdminMode Mode, int? Weight, DateTimeOffset Changed, string ChangedBy)
{
    /// <summary>True when nothing is overridden any more, so the entry can go.</summary>
    public bool IsEmpty => Mode == AdminMode.Active && Weight is null;
}
