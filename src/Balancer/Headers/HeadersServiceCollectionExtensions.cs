using Balancer.LoadBalancing;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Yarp.ReverseProxy.Transforms.Builder;

namespace Balancer.Headers;

public static class HeadersServiceCollectionExtensions
{
    /// <summary>Hop-by-hop field removal and trust-aware forwarding headers on every route (<see cref="HeaderTransformProvider"/>).</summary>
    public static IServiceCollection AddBalancerHeaders(this IServiceCollection services)
    {
        services.TryAddSingleton<ClientIpResolver>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ITransformProvider, HeaderTransformProvider>());
        return services;
    }
}
