using Balancer.Hosting;
using Microsoft.Extensions.ServiceDiscovery;
using Yarp.ReverseProxy.ServiceDiscovery;

namespace Balancer.Discovery;

internal static class DiscoveryServiceCollectionExtensions
{
    /// <summary>
    /// DNS discovery of destinations, on Microsoft.Extensions.ServiceDiscovery and its YARP destination resolver,
    /// with A/AAAA lookups by DnsClient. Without a destination marked for it, nothing is ever looked up.
    /// </summary>
    public static IReverseProxyBuilder AddBalancerDiscovery(this IReverseProxyBuilder proxy)
    {
        proxy.Services.AddServiceDiscoveryCore();
        proxy.Services.AddSingleton<DnsLookup>();
        proxy.Services.AddSingleton<DnsNames>();
        proxy.Services.AddSingleton<IServiceEndpointProviderFactory, DnsEndpointProviderFactory>();
        proxy.AddServiceDiscoveryDestinationResolver();
        proxy.Services.Decorate<IDestinationResolver>((_, inner) => new DiscoveringDestinationResolver(inner));
        return proxy;
    }
}
