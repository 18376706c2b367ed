using Yarp.ReverseProxy.Model;

namespace Balancer.Health;

/// <summary>One change of a destination's operator-facing health (<c>Up</c>/<c>Down</c>/<c>Unknown</c>).</summary>
public sealed record HealthChange(DateTimeOffset Time, string From, string To, string Reason);

/// <summary>Remembers the last health change of every destination, and its recent probes, passive events and flaps, for the status API and page.</summary>
public interface IDestinationHealthHistory
{
    /// <summary>The last recorded change, or null if the destination has not changed since start-up.</summary>
    HealthChange? LastChange(string clusterId, string destinationId);

    /// <summary>The destination's last probes and passive events (newest first) and its flaps over the last 10 minutes.</summary>
    HealthExplanation Explain(DestinationState destination);
}
