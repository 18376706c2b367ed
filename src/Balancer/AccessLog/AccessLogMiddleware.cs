using System.Diagnostics;
using Microsoft.AspNetCore.Http.Features;
using Balancer.LoadBalancing;
using Balancer.Resilience;
using Balancer.Telemetry;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;

namespace Balancer.AccessLog;

/// <summary>
/// Records every request of the proxy listener in the access log, answered by a backend or by the balancer
/// itself (413, 429, 503). First in the proxy pipeline after the server span, so it sees them all and knows
/// the trace. With the log off, a request costs one field read here.
/// </summary>
/// <remarks>
/// The line is made when the response has been sent (<c>OnCompleted</c>), which is the end the duration
/// is measured to, and reuses what the request already carries: the destination and cluster from YARP's
/// feature, the body sizes counted for the metrics, the retries counted by the failover.
/// </remarks>
internal sealed class AccessLogMiddleware(RequestDelegate next, AccessLogWriter log, ClientIpResolver clientIp, TimeProvider time)
{
    public Task InvokeAsync(HttpContext context)
    {
        if (!log.IsOn)
        {
            return next(context);
        }

        var trace = Activity.Current is { Recorded: true } activity ? activity.TraceId : (ActivityTraceId?)null;
        var request = new PendingRequest(this, context, time.GetUtcNow().UtcDateTime, time.GetTimestamp(), trace);
        context.Response.OnCompleted(static state => ((PendingRequest)state).Complete(), request);
        return next(context);
    }

    private void Record(PendingRequest pending)
    {
        var context = pending.Context;
        var request = context.Request;
        var response = context.Response;
        var proxy = context.Features.Get<IReverseProxyFeature>();
        var attempt = context.Features.Get<ProxyAttempt>();
        var head = HttpMethods.IsHead(request.Method);
        long bytesIn;
        long bytesOut;
        if (attempt is not null)
        {
            bytesIn = attempt.RequestBytes;
            bytesOut = head ? 0 : attempt.HasResponse ? attempt.ResponseBytes : response.ContentLength ?? 0;
        }
        else
        {
            // Not forwarded (answered by the balancer), or the per-request metrics are off: lengths as declared.
            bytesIn = proxy?.ProxiedDestination is null ? 0 : request.ContentLength ?? 0;
            bytesOut = head ? 0 : response.ContentLength ?? 0;
        }

        log.Write(new AccessLogLine(
            pending.Time,
            clientIp.Resolve(context),
            request.Method,
            TargetOf(context),
            request.Protocol,
            response.StatusCode,
            proxy?.ProxiedDestination?.DestinationId,
            proxy?.Cluster?.Config.ClusterId,
            time.GetElapsedTime(pending.Start).TotalMilliseconds,
            bytesIn,
            bytesOut,
            context.Features.Get<RetryCount>()?.Value ?? 0,
            pending.Trace,
            ErrorOf(context)));
    }

    /// <summary>The path and query as the client sent them, escapes included.</summary>
    private static string TargetOf(HttpContext context) =>
        context.Features.Get<IHttpRequestFeature>()?.RawTarget is { Length: > 0 } raw
            ? raw
            : string.Concat(context.Request.PathBase.Value, context.Request.Path.Value, context.Request.QueryString.Value);

    /// <summary>How forwarding failed, in the words of <c>balancer_retries_total</c>'s reasons where it is a transport failure.</summary>
    private static string? ErrorOf(HttpContext context)
    {
        if (context.GetForwarderErrorFeature() is not { Error: not ForwarderError.None } error)
        {
            return null;
        }

        var kind = TransportFailure.Classify(error.Error, error.Exception);
        return kind == FailureKind.None ? error.Error.ToString() : TransportFailure.Label(kind);
    }

    private sealed class PendingRequest(AccessLogMiddleware owner, HttpContext context, DateTime time, long start, ActivityTraceId? trace)
    {
        public HttpContext Context { get; } = context;

        public DateTime Time { get; } = time;

        public long Start { get; } = start;

        public ActivityTraceId? Trace { get; } = trace;

        public Task Complete()
        {
            owner.Record(this);
            return Task.CompletedTask;
        }
    }
}
