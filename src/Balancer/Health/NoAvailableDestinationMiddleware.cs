using Yarp.ReverseProxy.Model;

namespace Balancer.Health;

/// <summary>
/// Answers 503 at once, with a body that says why and a <c>Retry-After</c>, when a cluster has no
/// destination to send to (YARP would answer an empty 503). A gRPC call gets what gRPC clients understand
/// instead: the status UNAVAILABLE, trailers-only.
/// </summary>
internal sealed class NoAvailableDestinationMiddleware(RequestDelegate next)
{
    private const string Reason = "no healthy backend is available";
    private static readonly byte[] Body = System.Text.Encoding.UTF8.GetBytes($"503 Service Unavailable: {Reason}.\n");

    public Task InvokeAsync(HttpContext context)
    {
        var feature = context.GetReverseProxyFeature();
        if (feature.AvailableDestinations.Count > 0)
        {
            return next(context);
        }

        return WriteAsync(context);
    }

    /// <summary>The 503 answer; also used when every destination failed during failover.</summary>
    public static Task WriteAsync(HttpContext context)
    {
        if (Grpc.GrpcProtocol.IsGrpc(context.Request))
        {
            return Grpc.GrpcProtocol.WriteStatusAsync(context, Grpc.GrpcProtocol.Unavailable, Reason);
        }

        context.Response.Headers.RetryAfter = "1";
        return Hosting.PlainTextAnswer.WriteAsync(context, StatusCodes.Status503ServiceUnavailable, Body);
    }
}
