using Yarp.ReverseProxy.Transforms;

namespace Balancer.Telemetry;

public static class TelemetryServiceCollectionExtensions
{
    /// <summary>The per-destination Prometheus series and the response hook they need.</summary>
    public static IReverseProxyBuilder AddBalancerMetrics(this IReverseProxyBuilder proxy)
    {
        proxy.Services.AddSingleton<BalancerMetricsRegistry>();
        proxy.Services.AddSingleton<ProxyMetrics>();
        proxy.AddTransforms(static context =>
        {
            var time = context.Services.GetRequiredService<TimeProvider>();
            context.AddResponseTransform(transform => ProxyMetricsMiddleware.OnResponseHeaders(transform, time));
        });
        return proxy;
    }
}
