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
/// Runs on every health or state change of any destination of the cluster, on the thread that made it. For YARP's two
/// built-in policies (<c>HealthyOrPanic</c>, the default, and <c>HealthyAndUnknown</c>) it applies their rule itself, in
/// the same pass that leaves out the destinations taken out of service: one array of exactly the available destinations
/// per change (which the load-balancing policies then hold as it is), instead of YARP's growing list and a filtered copy
/// of it. Nothing is allocated when every destination is available. Any other policy's list is filtered as it comes.
/// </remarks>
internal sealed class RuntimeAvailableDestinations(IAvailableDestinationsPolicy inner, RuntimeOverrides overrides) : IAvailableDestinationsPolicy
{
    private const string HealthyOrPanic = "HealthyOrPanic";
    private const string HealthyAndUnknown = "HealthyAndUnknown";

    /// <summary>Up to this many out of service, each id is compared rather than hashed (the usual case is one or two).</summary>
    private const int CompareUpTo = 8;

    public string Name => inner.Name;

    // (sic): the interface member is spelt this way in YARP 2.3.
    public IReadOnlyList<DestinationState> GetAvailalableDestinations(ClusterConfig config, IReadOnlyList<DestinationState> allDestinations)
    {
        var outOfService = OutOfService.Of(overrides.OutOfService(config.ClusterId));
        var panic = string.Equals(inner.Name, HealthyOrPanic, StringComparison.OrdinalIgnoreCase);
        if (!panic && !string.Equals(inner.Name, HealthyAndUnknown, StringComparison.OrdinalIgnoreCase))
        {
            return InService(inner.GetAvailalableDestinations(config, allDestinations), outOfService);
        }

        var active = config.HealthCheck?.Active?.Enabled == true;
        var passive = config.HealthCheck?.Passive?.Enabled == true;
        if (!active && !passive)
        {
            return InService(allDestinations, outOfService);
        }

        int healthy = 0, kept = 0;
        for (var i = 0; i < allDestinations.Count; i++)
        {
            var destination = allDestinations[i];
            if (Healthy(destination, active, passive))
            {
                healthy++;
                kept += outOfService.Contains(destination.DestinationId) ? 0 : 1;
            }
        }

        // YARP's HealthyOrPanic: when none is healthy, all of them (then without those out of service).
        if (healthy == 0 && panic)
        {
            return InService(allDestinations, outOfService);
        }

        if (kept == allDestinations.Count)
        {
            return allDestinations;
        }

        var available = new DestinationState[kept];
        var next = 0;
        for (var i = 0; i < allDestinations.Count && next < kept; i++)
        {
            var destination = allDestinations[i];
            if (Healthy(destination, active, passive) && !outOfService.Contains(destination.DestinationId))
            {
                available[next++] = destination;
            }
        }

        return available;
    }

    /// <summary>YARP's rule: neither the active nor the passive state (of the checks enabled) is Unhealthy.</summary>
    private static bool Healthy(DestinationState destination, bool active, bool passive)
    {
        var health = destination.Health;
        return !(active && health.Active == DestinationHealth.Unhealthy) && !(passive && health.Passive == DestinationHealth.Unhealthy);
    }

    /// <summary><paramref name="available"/> without the destinations out of service, in order; the list itself when none is in it.</summary>
    private static IReadOnlyList<DestinationState> InService(IReadOnlyList<DestinationState> available, OutOfService outOfService)
    {
        if (outOfService.IsEmpty)
        {
            return available;
        }

        var kept = 0;
        for (var i = 0; i < available.Count; i++)
        {
            kept += outOfService.Contains(available[i].DestinationId) ? 0 : 1;
        }

        if (kept == available.Count)
        {
            return available;
        }

        var inService = new DestinationState[kept];
        var next = 0;
        for (var i = 0; i < available.Count; i++)
        {
            if (!outOfService.Contains(available[i].DestinationId))
            {
                inService[next++] = available[i];
            }
        }

        return inService;
    }

    /// <summary>The ids taken out of service: a few compared one by one (no hashing of every id in a large cluster), more looked up.</summary>
    private readonly struct OutOfService
    {
        private readonly string[]? _few;
        private readonly HashSet<string>? _many;

        private OutOfService(string[]? few, HashSet<string>? many)
        {
            _few = few;
            _many = many;
        }

        public bool IsEmpty => _few is null && _many is null;

        public static OutOfService Of(HashSet<string>? ids) =>
            ids is null || ids.Count == 0 ? default
            : ids.Count <= CompareUpTo ? new([.. ids], null)
            : new(null, ids);

        public bool Contains(string id)
        {
            if (_few is { } few)
            {
                foreach (var other in few)
                {
                    if (string.Equals(id, other, StringComparison.OrdinalIgnoreCase))
                    {
                        return true;
                    }
                }

                return false;
            }

            return _many?.Contains(id) == true;
        }
    }
}
