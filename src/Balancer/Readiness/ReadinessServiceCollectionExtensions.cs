using Prometheus;

namespace Balancer.Readiness;

internal static class ReadinessServiceCollectionExtensions
{
    /// <summary>
    /// <c>/readyz</c>'s state, the signal handling that turns it before the host stops, and the
    /// <c>balancer_ready</c> gauge that tells a dashboard which instance of a pair can serve.
    /// </summary>
    public static IServiceCollection AddReadiness(this IServiceCollection services)
    {
        services.AddSingleton<InstanceReadiness>();
        services.AddSingleton<IHostLifetime, DrainingLifetime>();
        services.AddHostedService<ReadinessGauge>();
        services.AddHostedService<AddressHandOver>();
        return services;
    }

    private sealed class ReadinessGauge(Telemetry.BalancerMetricsRegistry metrics, InstanceReadiness readiness) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            var gauge = metrics.Factory.CreateGauge("balancer_ready", "1 while this instance answers /readyz with 200 (can serve and is not leaving), else 0.");
            metrics.Registry.AddBeforeCollectCallback(() => gauge.Set(readiness.NotReadyReason() is null ? 1 : 0));
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
