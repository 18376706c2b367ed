using Balancer.Hosting;
using Balancer.PerDestination;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Health;

internal static class HealthServiceCollectionExtensions
{
    /// <summary>
    /// The balancer's active health monitor in place of YARP's. Call before <c>AddReverseProxy()</c>: YARP
    /// registers its own only when no <see cref="IActiveHealthCheckMonitor"/> is registered yet.
    /// </summary>
    public static IServiceCollection AddSpreadHealthMonitor(this IServiceCollection services)
    {
        services.AddSingleton(sp => sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<Configuration.BalancerOptions>>().Value.ActiveHealthChecks);
        services.AddSingleton<SpreadHealthMonitor>();
        services.AddSingleton<IActiveHealthCheckMonitor>(sp => sp.GetRequiredService<SpreadHealthMonitor>());
        services.AddSingleton<IClusterChangeListener>(sp => sp.GetRequiredService<SpreadHealthMonitor>());
        return services;
    }

    /// <summary>
    /// Health tracking (transitions logged, counted and remembered), outlier ejection, the <c>FirstFailure</c>
    /// passive policy and the observation of active probes. Call after <c>AddReverseProxy()</c>: these replace
    /// YARP's defaults.
    /// </summary>
    public static IServiceCollection AddBalancerHealth(this IServiceCollection services)
    {
        if (services.Any(d => d.ServiceType.FullName == "Yarp.ReverseProxy.Health.ActiveHealthCheckMonitor"))
        {
            throw new InvalidOperationException($"YARP's active health monitor is registered: call {nameof(AddSpreadHealthMonitor)} before AddReverseProxy().");
        }

        services.AddSingleton(sp => sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<Configuration.BalancerOptions>>().Value.OutlierDetection);
        services.AddDestinationSlots();
        services.AddSingleton<DestinationHealthTracker>();
        services.AddSingleton<IDestinationHealthUpdater>(sp => sp.GetRequiredService<DestinationHealthTracker>());
        services.AddSingleton<IDestinationHealthHistory>(sp => sp.GetRequiredService<DestinationHealthTracker>());
        services.AddSingleton<IPassiveHealthCheckPolicy, FirstFailurePassivePolicy>();
        // YARP's own keeps its counts in a weak table of its own: ours, under the same name, keeps them in the slots. Were
        // YARP's not found and so left in place, YARP would refuse the two policies of one name at start-up.
        for (var i = services.Count - 1; i >= 0; i--)
        {
            if (services[i].ServiceType == typeof(IActiveHealthCheckPolicy) && services[i].ImplementationType?.FullName == "Yarp.ReverseProxy.Health.ConsecutiveFailuresHealthPolicy")
            {
                services.RemoveAt(i);
            }
        }

        services.AddSingleton<IActiveHealthCheckPolicy, ConsecutiveFailuresPolicy>();
        services.Decorate<IActiveHealthCheckPolicy>((sp, inner) => new ProbeObservingPolicy(inner, sp.GetRequiredService<DestinationHealthTracker>()));
        return services;
    }
}
