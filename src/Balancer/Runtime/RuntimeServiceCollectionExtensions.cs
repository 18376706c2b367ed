using Balancer.Configuration;
using Balancer.Health;
using Balancer.Hosting;
using Balancer.LoadBalancing;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Health;

namespace Balancer.Runtime;

internal static class RuntimeServiceCollectionExtensions
{
    /// <summary>
    /// Runtime overrides (drain, maintenance, weight) with their state file, the effective weights the policies
    /// read, slow start, and the runtime API. Call after <c>AddReverseProxy()</c>: this wraps YARP's
    /// available-destinations policies.
    /// </summary>
    public static IServiceCollection AddBalancerRuntime(this IServiceCollection services)
    {
        services.AddSingleton(sp =>
        {
            var path = sp.GetRequiredService<IOptions<BalancerOptions>>().Value.StateFile;
            var file = string.IsNullOrWhiteSpace(path)
                ? null
                : new StateFile(path, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<StateFile>>());
            return new RuntimeOverrides(file);
        });
        services.AddSingleton<EffectiveWeights>();
        services.AddSingleton<DestinationRuntimeViews>();
        services.AddSingleton<DrainWatch>();
        services.AddSingleton<RuntimeApi>();
        services.AddSingleton<RuntimeMetrics>();
        services.AddSingleton<SlowStartTrigger>();
        services.AddSingleton<IConfigChangeListener, RuntimeConfigListener>();
        services.AddSingleton<AvailabilityChanges>();
        services.Decorate<IAvailableDestinationsPolicy>((sp, inner) => new RuntimeAvailableDestinations(inner, sp.GetRequiredService<RuntimeOverrides>(), sp.GetRequiredService<AvailabilityChanges>()));
        return services;
    }

    /// <summary>Creates what must exist from start-up: the state gauge and the slow-start trigger.</summary>
    public static void StartBalancerRuntime(this IServiceProvider services)
    {
        services.GetRequiredService<RuntimeMetrics>();
        services.GetRequiredService<SlowStartTrigger>();
    }
}

/// <summary>Starts a destination's slow-start ramp when it comes back from Down.</summary>
internal sealed class SlowStartTrigger
{
    public SlowStartTrigger(DestinationHealthTracker tracker, RuntimeOverrides overrides, TimeProvider time) =>
        tracker.HealthChanged += (cluster, destination, from, to) =>
        {
            if (from == DestinationHealthView.Down && to != DestinationHealthView.Down)
            {
                overrides.StartRamp(cluster.ClusterId, destination.DestinationId, time.GetTimestamp(),
                    changesWeights: SlowStart.DurationOf(destination, cluster.Model) is not null);
            }
        };
}
