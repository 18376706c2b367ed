using Balancer.Hosting;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.LoadBalancing;

namespace Balancer.LoadBalancing;

public static class LoadBalancingServiceCollectionExtensions
{
    /// <summary>
    /// Registers RoundRobin (weighted, replacing YARP's built-in of that name), LeastConnections and IpHash.
    /// Call after <c>AddReverseProxy()</c>.
    /// </summary>
    public static IServiceCollection AddBalancerPolicies(this IServiceCollection services)
    {
        // YARP throws at start-up on two policies with one name, so its unweighted RoundRobin must go.
        for (var i = services.Count - 1; i >= 0; i--)
        {
            var descriptor = services[i];
            if (descriptor.ServiceType == typeof(ILoadBalancingPolicy) &&
                descriptor.ImplementationType?.Name == "RoundRobinLoadBalancingPolicy")
            {
                services.RemoveAt(i);
            }
        }

        services.TryAddSingleton<ClientIpResolver>();
        services.TryAddSingleton<PolicySnapshots>();
        services.Decorate<IClusterDestinationsUpdater>((sp, inner) => new PreparingDestinationsUpdater(inner, sp.GetRequiredService<PolicySnapshots>(), sp.GetService<Runtime.AvailabilityChanges>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ILoadBalancingPolicy, RoundRobinPolicy>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ILoadBalancingPolicy, LeastConnectionsPolicy>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ILoadBalancingPolicy, IpHashPolicy>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<Yarp.ReverseProxy.Configuration.IConfigChangeListener, IpHashTables>());
        return services;
    }
}
