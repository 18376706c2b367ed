using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Health;

/// <summary>The operator-facing health of a destination, combined from YARP's active and passive states.</summary>
public static class DestinationHealthView
{
    public const string Up = "Up";
    public const string Down = "Down";
    public const string Unknown = "Unknown";

    public static string Of(DestinationState destination)
    {
        var health = destination.Health;
        if (health.Active == DestinationHealth.Unhealthy || health.Passive == DestinationHealth.Unhealthy)
        {
            return Down;
        }

        return health.Active == DestinationHealth.Healthy || health.Passive == DestinationHealth.Healthy ? Up : Unknown;
    }
}
