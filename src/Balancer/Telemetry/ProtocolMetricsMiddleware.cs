namespace Balancer.Telemetry;

/// <summary>Counts each proxied request once by its protocol (<see cref="ProtocolMetrics"/>), before any retry.</summary>
internal sealed class ProtocolMetricsMiddleware(RequestDelegate next, ProtocolMetrics metrics)
{
    public Task InvokeAsync(HttpContext context)
    {
        metrics.Count(context.GetReverseProxyFeature().Cluster.Config.ClusterId, context.Request);
        return next(context);
    }
}
