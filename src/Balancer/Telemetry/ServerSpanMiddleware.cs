using System.Diagnostics;
using Yarp.ReverseProxy.Model;

namespace Balancer.Telemetry;

/// <summary>
/// The server span of a proxied request, from arrival to the last byte of the response. Only in the
/// pipeline while tracing is on; a request that is not sampled passes with one header lookup.
/// </summary>
internal sealed class ServerSpanMiddleware(RequestDelegate next, ProxyTracing tracing)
{
    public Task InvokeAsync(HttpContext context)
    {
        var headers = context.Request.Headers;
        var traceparent = headers.TraceParent;
        // Two traceparent headers are invalid (W3C): start a new trace rather than guess.
        var parentText = traceparent.Count == 1 ? traceparent[0] : null;
        var tracestate = parentText is null ? null : headers.TraceState.ToString();
        if (!tracing.ShouldTrace(parentText, string.IsNullOrEmpty(tracestate) ? null : tracestate, out var parent))
        {
            return next(context);
        }

        return TraceAsync(context, parent);
    }

    private async Task TraceAsync(HttpContext context, ActivityContext parent)
    {
        // ASP.NET Core has an activity of its own here when its diagnostics log (nothing exports it): a new
        // trace must not become its child, or the exported span would point at a parent nobody has.
        Activity.Current = null;
        var request = context.Request;
        using var activity = tracing.Source.StartActivity(request.Method, ActivityKind.Server, parent);
        if (activity is null)
        {
            await next(context);
            return;
        }

        if (activity.IsAllDataRequested)
        {
            activity.SetTag("http.request.method", request.Method);
            activity.SetTag("url.scheme", request.Scheme);
            activity.SetTag("url.path", request.Path.Value);
            activity.SetTag("server.address", request.Host.Host);
            if (request.Host.Port is int port)
            {
                activity.SetTag("server.port", ProxyTracing.Box(port));
            }

            activity.SetTag("client.address", context.Connection.RemoteIpAddress?.ToString());
            activity.SetTag("user_agent.original", request.Headers.UserAgent.ToString());
        }

        try
        {
            await next(context);
        }
        catch (Exception e)
        {
            activity.SetStatus(ActivityStatusCode.Error, e.GetType().Name);
            activity.SetTag("error.type", e.GetType().FullName);
            throw;
        }

        if (!activity.IsAllDataRequested)
        {
            return;
        }

        // Semantic conventions: for a server span only 5xx is its own failure.
        ProxyTracing.TagStatusCode(activity, context.Response.StatusCode, failedFrom: 500);

        if (context.Features.Get<IReverseProxyFeature>() is { } proxy)
        {
            activity.SetTag("balancer.route", proxy.Route.Config.RouteId);
            activity.SetTag("balancer.cluster", proxy.Cluster?.Config.ClusterId);
            activity.SetTag("balancer.destination", proxy.ProxiedDestination?.DestinationId);
        }
    }
}
