using Balancer.Health;
using Balancer.Hosting;
using Balancer.PerDestination;
using Yarp.ReverseProxy.Forwarder;

namespace Balancer.Resilience;

internal static class ResilienceServiceCollectionExtensions
{
    /// <summary>
    /// The resilient outbound client (circuit breaker, attempt timeout, probes let through), and the withdrawal
    /// of replay-safe requests from destinations marked Down. Builds on <see cref="HealthServiceCollectionExtensions.AddBalancerHealth"/>,
    /// which it reports to; the retries themselves are <see cref="RetryMiddleware"/> in the proxy pipeline.
    /// </summary>
    public static IServiceCollection AddBalancerResilience(this IServiceCollection services)
    {
        services.AddSingleton<IForwarderHttpClientFactory, ResilientForwarderHttpClientFactory>();
        services.AddDestinationSlots();
        services.AddSingleton<DownSignals>();
        services.AddSingleton<Logging.ProxyErrorLog>();
        services.Decorate<IHttpForwarder>((_, inner) => new WithdrawingForwarder(inner));
        services.MarkHealthProbes();
        return services;
    }
}
