using Balancer.Telemetry;

namespace Balancer.Grpc;

/// <summary>
/// What the balancer does for gRPC calls beyond forwarding them, first in the proxy pipeline: a call that
/// failed in the balancer (no destination answered) ends with the gRPC status UNAVAILABLE rather than an
/// empty HTTP 502/504, and every call answered through a destination is counted by the status it ended with
/// (<c>balancer_destination_grpc_calls_total</c>): gRPC errors travel as HTTP 200, which the per-destination
/// <c>code</c> label cannot tell from success. Other requests pass with one header check.
/// </summary>
/// <param name="countCalls">False when per-request metrics are off (<c>Balancer:Metrics:Enabled</c>); the answers stay.</param>
internal sealed class GrpcCallMiddleware(RequestDelegate next, ProxyMetrics metrics, bool countCalls)
{
    public Task InvokeAsync(HttpContext context) =>
        GrpcProtocol.IsGrpc(context.Request) ? CallAsync(context) : next(context);

    private async Task CallAsync(HttpContext context)
    {
        await next(context);
        var response = context.Response;
        var error = context.GetForwarderErrorFeature();
        if (error is not null && !response.HasStarted && !context.RequestAborted.IsCancellationRequested)
        {
            // YARP set 502 (or 504 for a timeout) and wrote nothing; a gRPC client reads a status instead.
            await GrpcProtocol.WriteStatusAsync(context, GrpcProtocol.Unavailable, $"the backend failed ({error.Error})");
        }

        var feature = context.GetReverseProxyFeature();
        if (countCalls && feature.ProxiedDestination is { } destination)
        {
            metrics.For(feature.Cluster.Config.ClusterId, destination).RecordGrpc(GrpcProtocol.SentStatus(context));
        }
    }
}
