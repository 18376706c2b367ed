using Yarp.ReverseProxy.Transforms;

namespace Balancer.Telemetry;

public static class TelemetryServiceCollectionExtensions
{
    /// <summary>
    /// The per-destination Prometheus series, and the response hook of the per-request ones unless
    /// <paramref name="perRequest"/> is false (<see cref="MetricsOptions.Enabled"/>).
    /// </summary>
    public static IReverseProxyBuilder AddBalancerMetrics(this IReverseProxyBuilder proxy, bool perRequest = true)
    {
        proxy.Services.AddSingleton<BalancerMetricsRegistry>();
        proxy.Services.AddSingleton<ProxyMetrics>();
        proxy.Services.AddSingleton<ProtocolMetrics>();
        if (!perRequest)
        {
            return proxy;
        }

        proxy.AddTransforms(static context =>
        {
            var time = context.Services.GetRequiredService<TimeProvider>();
            context.AddResponseTransform(transform => ProxyMetricsMiddleware.OnResponseHeaders(transform, time));
        });
        return proxy;
    }
}
