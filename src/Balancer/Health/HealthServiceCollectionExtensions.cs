using Balancer.Hosting;
using Balancer.Resilience;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Health;

namespace Balancer.Health;

internal static class HealthServiceCollectionExtensions
{
    /// <summary>
    /// Health tracking (transitions logged, counted and remembered), the <c>FirstFailure</c> passive policy,
    /// the resilient outbound client, and the withdrawal of replay-safe requests from destinations marked Down.
    /// Call after <c>AddReverseProxy()</c>: these replace YARP's defaults.
    /// </summary>
    public static IServiceCollection AddBalancerHealth(this IServiceCollection services)
    {
        services.AddSingleton(sp => sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<Configuration.BalancerOptions>>().Value.OutlierDetection);
        services.AddSingleton<DestinationHealthTracker>();
        services.AddSingleton<IDestinationHealthUpdater>(sp => sp.GetRequiredService<DestinationHealthTracker>());
        services.AddSingleton<IDestinationHealthHistory>(sp => sp.GetRequiredService<DestinationHealthTracker>());
        services.AddSingleton<IPassiveHealthCheckPolicy, FirstFailurePassivePolicy>();
        services.AddSingleton<IForwarderHttpClientFactory, ResilientForwarderHttpClientFactory>();
        services.AddSingleton<DownSignals>();
        services.AddSingleton<Yarp.ReverseProxy.Transforms.Builder.ITransformProvider, RedispatchHandler.MarkingTransformProvider>();
        services.MarkHealthProbes();
        services.Decorate<IActiveHealthCheckPolicy>((sp, inner) => new ProbeObservingPolicy(inner, sp.GetRequiredService<DestinationHealthTracker>()));
        return services;
    }
}
