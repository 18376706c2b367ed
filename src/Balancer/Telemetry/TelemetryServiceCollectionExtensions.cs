using Balancer.PerDestination;
using Yarp.ReverseProxy.Transforms.Builder;

namespace Balancer.Telemetry;

public static class TelemetryServiceCollectionExtensions
{
    /// <summary>
    /// The per-destination Prometheus series, and the transforms that record the per-request ones unless
    /// <paramref name="perRequest"/> is false (<see cref="MetricsOptions.Enabled"/>).
    /// </summary>
    public static IReverseProxyBuilder AddBalancerMetrics(this IReverseProxyBuilder proxy, bool perRequest = true)
    {
        proxy.Services.AddSingleton<BalancerMetricsRegistry>();
        proxy.Services.AddDestinationSlots();
        proxy.Services.AddSingleton<ProxyMetrics>();
        proxy.Services.AddSingleton<ProtocolMetrics>();
        proxy.Services.AddSingleton<Yarp.ReverseProxy.Configuration.IConfigChangeListener, DestinationMetricsListener>();
        if (perRequest)
        {
            proxy.Services.AddSingleton<ITransformProvider, ProxyMetricsTransforms>();
        }

        return proxy;
    }
}
