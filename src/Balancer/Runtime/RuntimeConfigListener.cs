using Yarp.ReverseProxy.Configuration;

namespace Balancer.Runtime;

/// <summary>
/// Drops the overrides of destinations that left the config file once YARP applied it: an override outlives
/// reloads, not the destination it was made for (a destination of the same name added later starts clean).
/// </summary>
internal sealed partial class RuntimeConfigListener(RuntimeOverrides overrides, ILogger<RuntimeConfigListener> logger) : IConfigChangeListener
{
    public void ConfigurationApplied(IReadOnlyList<IProxyConfig> proxyConfigs)
    {
        var present = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var config in proxyConfigs)
        {
            foreach (var cluster in config.Clusters)
            {
                foreach (var destination in cluster.Destinations?.Keys ?? Enumerable.Empty<string>())
                {
                    present.Add(cluster.ClusterId + "\n" + destination);
                }
            }
        }

        foreach (var removed in overrides.RemoveWhere((cluster, destination) => !present.Contains(cluster + "\n" + destination)))
        {
            LogDropped(logger, removed.Cluster, removed.Destination, removed.Override.Mode, removed.Override.Weight);
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

    [LoggerMessage(EventId = 7131, Level = LogLevel.Information, Message = "Runtime override of {Cluster}/{Destination} (mode {Mode}, weight {Weight}) dropped: the destination is no longer in the config file")]
    private static partial void LogDropped(ILogger logger, string cluster, string destination, AdminMode mode, int? weight);
}
