using Balancer.Hosting;
using Yarp.ReverseProxy.Health;

namespace Balancer.Health;

internal static class HealthServiceCollectionExtensions
{
    /// <summary>
    /// Health tracking (transitions logged, counted and remembered), outlier ejection, the <c>FirstFailure</c>
    /// passive policy and the observation of active probes. Call after <c>AddReverseProxy()</c>: these replace
    /// YARP's defaults.
    /// </summary>
    public static IServiceCollection AddBalancerHealth(this IServiceCollection services)
    {
        services.AddSingleton(sp => sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<Configuration.BalancerOptions>>().Value.OutlierDetection);
        services.AddSingleton<DestinationHealthTracker>();
        services.AddSingleton<IDestinationHealthUpdater>(sp => sp.GetRequiredService<DestinationHealthTracker>());
        services.AddSingleton<IDestinationHealthHistory>(sp => sp.GetRequiredService<DestinationHealthTracker>());
        services.AddSingleton<IPassiveHealthCheckPolicy, FirstFailurePassivePolicy>();
        services.Decorate<IActiveHealthCheckPolicy>((sp, inner) => new ProbeObservingPolicy(inner, sp.GetRequiredService<DestinationHealthTracker>()));
        return services;
    }
}
