using Yarp.ReverseProxy.Configuration;

namespace Balancer.Configuration;

/// <summary>Feeds YARP's verdict on each configuration into the <see cref="ConfigReloadTracker"/>.</summary>
internal sealed class ReloadListener(ConfigReloadTracker tracker) : IConfigChangeListener
{
    public void ConfigurationApplied(IReadOnlyList<IProxyConfig> proxyConfigs) => tracker.Applied();

    public void ConfigurationApplyingFailed(IReadOnlyList<IProxyConfig> proxyConfigs, Exception exception) =>
        tracker.Rejected(Describe(exception));

    public void ConfigurationLoaded(IReadOnlyList<IProxyConfig> proxyConfigs)
    {
    }

    public void ConfigurationLoadingFailed(IProxyConfigProvider configProvider, Exception exception) =>
        tracker.Rejected(Describe(exception));

    private static string Describe(Exception exception) => exception is AggregateException aggregate
        ? string.Join("; ", aggregate.InnerExceptions.Select(e => e.Message))
        : exception.Message;
}
