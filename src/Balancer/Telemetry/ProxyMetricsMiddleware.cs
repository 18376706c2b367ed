using Microsoft.AspNetCore.Http.Features;
using Yarp.ReverseProxy.Transforms;

namespace Balancer.Telemetry;

/// <summary>
/// Records each forwarding attempt at the destination it went to. Sits after load balancing in the proxy
/// pipeline, so a request retried elsewhere counts once at each destination it tried.
/// </summary>
/// <remarks>
/// The attempt is recorded by <see cref="OnResponseHeaders"/>, which YARP runs once per attempt: when the
/// destination's headers arrive, or with no response when the attempt failed. So this middleware needs no
/// async frame of its own around the forwarding, which cost an allocation per request.
/// </remarks>
internal sealed class ProxyMetricsMiddleware(RequestDelegate next, ProxyMetrics metrics, TimeProvider time)
{
    public Task InvokeAsync(HttpContext context)
    {
        var feature = context.GetReverseProxyFeature();
        var available = feature.AvailableDestinations;
        if (available.Count != 1)
        {
            // Load balancing leaves exactly the chosen destination; anything else is not forwarded.
            return next(context);
        }

        var destination = metrics.For(feature.Cluster.Config.ClusterId, available[0]);
        // A retry replaces the previous attempt's record, which its response hook has already counted.
        var attempt = new ProxyAttempt(destination, time.GetTimestamp());
        context.Features.Set(attempt);
        var request = context.Request;
        if (request.ContentLength is long length)
        {
            attempt.AddRequestBytes(length);
        }
        else if (context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody == true)
        {
            // Chunked upload: count what actually streams through, at this attempt's destination only. A retry
            // unwraps the previous attempt's counter, which would otherwise count the same bytes again.
            var body = request.Body is CountingStream previous ? previous.Inner : request.Body;
            request.Body = new CountingStream(body, attempt.AddRequestBytes);
        }

        return next(context);
    }

    /// <summary>
    /// Runs when the destination's response headers have arrived, before YARP copies the body (the moment
    /// the duration histogram measures, and the last chance to count a body of unknown length), or without
    /// a response once the attempt failed.
    /// </summary>
    public static ValueTask OnResponseHeaders(ResponseTransformContext context, TimeProvider time)
    {
        var http = context.HttpContext;
        var attempt = http.Features.Get<ProxyAttempt>();
        if (attempt is null || attempt.Recorded)
        {
            return ValueTask.CompletedTask;
        }

        attempt.Recorded = true;
        var end = time.GetTimestamp();
        var destination = attempt.Destination;
        var seconds = time.GetElapsedTime(attempt.Start, end).TotalSeconds;
        if (context.ProxyResponse is not { } response)
        {
            destination.Record(0, seconds, end / time.TimestampFrequency);
            return ValueTask.CompletedTask;
        }

        destination.Record((int)response.StatusCode, seconds, end / time.TimestampFrequency);
        attempt.HasResponse = true;
        if (response.Content.Headers.ContentLength is long length)
        {
            attempt.AddResponseBytes(length);
        }
        else
        {
            http.Response.Body = new CountingStream(http.Response.Body, attempt.AddResponseBytes);
        }

        return ValueTask.CompletedTask;
    }
}
