using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.LoadBalancing;

namespace Balancer.LoadBalancing;

/// <summary>
/// Builds the lookup table of every large IpHash cluster when a config is applied (at start-up, before the
/// listeners serve, and after a reload), so that the first requests of a cluster of thousands do not wait
/// for it. A cluster that already has a table gets its new one off the request path, and only when the reload
/// changed its destinations or their weights.
/// </summary>
internal sealed class IpHashTables(IServiceProvider services) : IConfigChangeListener
{
    public void ConfigurationApplied(IReadOnlyList<IProxyConfig> proxyConfigs)
    {
        // Resolved here: YARP's proxy state depends on the config change listeners.
        var policy = services.GetServices<ILoadBalancingPolicy>().OfType<IpHashPolicy>().SingleOrDefault();
        if (policy is null)
        {
            return;
        }

        foreach (var cluster in services.GetRequiredService<IProxyStateLookup>().GetClusters())
        {
            if (string.Equals(PolicyNames.Canonical(cluster.Model.Config.LoadBalancingPolicy), PolicyNames.IpHash, StringComparison.Ordinal))
            {
                policy.Prepare(cluster);
            }
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
