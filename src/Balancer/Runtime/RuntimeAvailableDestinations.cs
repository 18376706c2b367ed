using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Runtime;

/// <summary>
/// Wraps YARP's available-destinations policies so that drained and maintenance destinations are left out
/// of every cluster's available list, exactly as a destination that is down: every policy skips them, and
/// IpHash clients move as if it had failed and come back when it is enabled.
/// </summary>
/// <remarks>
/// Runs on every health or state change of any destination of the cluster, so its cost follows the destinations
/// taken out of service, not the cluster's size: without any, YARP's list is passed on as it is.
/// </remarks>
internal sealed class RuntimeAvailableDestinations(IAvailableDestinationsPolicy inner, RuntimeOverrides overrides) : IAvailableDestinationsPolicy
{
    public string Name => inner.Name;

    // (sic): the interface member is spelt this way in YARP 2.3.
    public IReadOnlyList<DestinationState> GetAvailalableDestinations(ClusterConfig config, IReadOnlyList<DestinationState> allDestinations)
    {
        var available = inner.GetAvailalableDestinations(config, allDestinations);
        if (overrides.OutOfService(config.ClusterId) is not { } outOfService)
        {
            return available;
        }

        List<DestinationState>? kept = null;
        for (var i = 0; i < available.Count; i++)
        {
            var destination = available[i];
            var inService = !outOfService.Contains(destination.DestinationId);
            if (!inService && kept is null)
            {
                kept = new List<DestinationState>(available.Count);
                for (var j = 0; j < i; j++)
                {
                    kept.Add(available[j]);
                }
            }
            else if (inService)
            {
                kept?.Add(destination);
            }
        }

        return kept ?? available;
    }
}
