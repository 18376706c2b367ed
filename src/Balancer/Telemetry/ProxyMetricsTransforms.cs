using Microsoft.AspNetCore.Http.Features;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace Balancer.Telemetry;

/// <summary>
/// Records each forwarding attempt at the destination it went to: the one place the per-request series are
/// written. YARP runs these transforms once per attempt, inside the forwarder, so a request retried elsewhere
/// counts once at each destination it tried.
/// </summary>
/// <remarks>
/// The request transform opens the attempt once the destination is chosen; the response transform closes it when
/// the destination's headers arrive, or with no response once the attempt failed. No middleware and no async
/// frame of its own around the forwarding, which cost an allocation per request.
/// </remarks>
internal sealed class ProxyMetricsTransforms(IServiceProvider services, TimeProvider time) : ITransformProvider
{
    // Resolved at the first request: the metrics read YARP's proxy state, which is built with these transforms.
    private ProxyMetrics? _metrics;

    public void ValidateRoute(TransformRouteValidationContext context)
    {
    }

    public void ValidateCluster(TransformClusterValidationContext context)
    {
    }

    public void Apply(TransformBuilderContext context)
    {
        context.AddRequestTransform(OnRequest);
        context.AddResponseTransform(OnResponseHeaders);
    }

    private ValueTask OnRequest(RequestTransformContext context)
    {
        var http = context.HttpContext;
        var feature = http.GetReverseProxyFeature();
        if (feature.ProxiedDestination is not { } proxied)
        {
            return ValueTask.CompletedTask;
        }

        // A retry replaces the previous attempt's record, which its response transform has already counted.
        var metrics = _metrics ??= services.GetRequiredService<ProxyMetrics>();
        var attempt = new ProxyAttempt(metrics.For(feature.Cluster.Config.ClusterId, proxied), time.GetTimestamp());
        http.Features.Set(attempt);
        if (http.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody == true)
        {
            // Counted as it is read to be sent, whether its length is declared or not: a destination that refused
            // the connection got nothing of it. A retry unwraps the previous attempt's counter, which would
            // otherwise count the same bytes again.
            var request = http.Request;
            var body = request.Body is CountingStream previous ? previous.Inner : request.Body;
            request.Body = new CountingStream(body, attempt.AddRequestBytes);
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Runs when the destination's response headers have arrived, before YARP copies the body (the moment
    /// the duration histogram measures, and the last chance to count a body of unknown length), or without
    /// a response once the attempt failed.
    /// </summary>
    private ValueTask OnResponseHeaders(ResponseTransformContext context)
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
