using Microsoft.AspNetCore.Http.Features;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Transforms;

namespace Balancer.Telemetry;

/// <summary>
/// Records each forwarding attempt at the destination it went to. Sits after load balancing in the proxy
/// pipeline, so a request retried elsewhere counts once at each destination it tried.
/// </summary>
internal sealed class ProxyMetricsMiddleware(RequestDelegate next, ProxyMetrics metrics, TimeProvider time)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var feature = context.GetReverseProxyFeature();
        var available = feature.AvailableDestinations;
        if (available.Count != 1)
        {
            // Load balancing leaves exactly the chosen destination; anything else is not forwarded.
            await next(context);
            return;
        }

        var destination = metrics.For(feature.Cluster.Config.ClusterId, available[0]);
        var attempt = new ProxyAttempt(destination, time.GetTimestamp());
        context.Features.Set(attempt);
        var request = context.Request;
        if (request.ContentLength is long length)
        {
            destination.AddRequestBytes(length);
        }
        else if (context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody == true)
        {
            // Chunked upload: count what actually streams through.
            request.Body = new CountingStream(request.Body, destination.AddRequestBytes);
        }

        try
        {
            await next(context);
        }
        finally
        {
            context.Features.Set<ProxyAttempt>(null);
            var end = attempt.HeadersAt != 0 ? attempt.HeadersAt : time.GetTimestamp();
            var error = context.Features.Get<IForwarderErrorFeature>();
            var status = error is not null && error.Error != ForwarderError.None && attempt.HeadersAt == 0 ? 0 : context.Response.StatusCode;
            destination.Record(status, time.GetElapsedTime(attempt.Start, end).TotalSeconds, end / time.TimestampFrequency);
        }
    }

    /// <summary>
    /// Runs when the destination's response headers have arrived, before YARP copies the body: the moment
    /// the duration histogram measures, and the last chance to count a body of unknown length.
    /// </summary>
    public static ValueTask OnResponseHeaders(ResponseTransformContext context, TimeProvider time)
    {
        var attempt = context.HttpContext.Features.Get<ProxyAttempt>();
        if (attempt is null || context.ProxyResponse is null)
        {
            return ValueTask.CompletedTask;
        }

        attempt.HeadersAt = time.GetTimestamp();
        if (context.ProxyResponse.Content.Headers.ContentLength is long length)
        {
            attempt.Destination.AddResponseBytes(length);
        }
        else
        {
            var response = context.HttpContext.Response;
            response.Body = new CountingStream(response.Body, attempt.Destination.AddResponseBytes);
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>One forwarding attempt in flight; found by the response transform through the request's features.</summary>
    private sealed class ProxyAttempt(DestinationMetrics destination, long start)
    {
        public DestinationMetrics Destination { get; } = destination;

        public long Start { get; } = start;

        public long HeadersAt { get; set; }
    }
}
