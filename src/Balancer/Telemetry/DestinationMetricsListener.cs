using Yarp.ReverseProxy.Configuration;

namespace Balancer.Telemetry;

/// <summary>
/// Creates the metrics of the destinations a config brought (<see cref="ProxyMetrics.TrackNewDestinations"/>) once it
/// is applied, on the thread pool: neither start-up nor the reload waits for it, and the next scrape finds them made.
/// </summary>
internal sealed class DestinationMetricsListener(IServiceProvider services) : IConfigChangeListener
{
    public void ConfigurationApplied(IReadOnlyList<IProxyConfig> proxyConfigs) =>
        // Resolved here: YARP's proxy state, which the metrics read, depends on the config change listeners.
        ThreadPool.QueueUserWorkItem(static metrics => Track(metrics), services.GetRequiredService<ProxyMetrics>(), preferLocal: false);

    private static void Track(ProxyMetrics metrics)
    {
        try
        {
            metrics.TrackNewDestinations();
        }
        catch (Exception)
        {
            // Only a head start: the next scrape creates whatever is missing, and a failure there fails the scrape.
        }
    }

    public void ConfigurationApplyingFailed(IReadOnlyList<IProxyConfig> proxyConfigs, Exception exception)
    {
    }

    public void ConfigurationLoaded(IReadOnlyList<IProxyConfig> proxyConfigs)
    {
    }

    public void ConfigurationLoadingFailed(IProxyConfigProvider configProvider, Exception exception)
    {
    }
}
