namespace Balancer.AccessLog;

public static class AccessLogServiceCollectionExtensions
{
    /// <summary>The access log's writer; it opens a file only once <c>Balancer:AccessLog:Path</c> is set.</summary>
    public static IServiceCollection AddBalancerAccessLog(this IServiceCollection services) =>
        services.AddSingleton<AccessLogWriter>();

    /// <summary>Puts the access log into the proxy listener's pipeline; costs a field read per request while it is off.</summary>
    public static IApplicationBuilder UseBalancerAccessLog(this IApplicationBuilder app) =>
        app.UseMiddleware<AccessLogMiddleware>();
}
