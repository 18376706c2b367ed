namespace Balancer.RateLimiting;

public static class RateLimitServiceCollectionExtensions
{
    /// <summary>The per-client limits of <c>Balancer:RateLimit</c> and route metadata; idle until configured.</summary>
    public static IServiceCollection AddBalancerRateLimits(this IServiceCollection services) =>
        services.AddSingleton<ClientLimits>();

    /// <summary>The limits' check, first in the proxy pipeline.</summary>
    public static IApplicationBuilder UseBalancerRateLimits(this IApplicationBuilder proxy) =>
        proxy.UseMiddleware<RateLimitMiddleware>();
}
