using System.Diagnostics;
using Balancer.PerDestination;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;

namespace Balancer.Telemetry;

/// <summary>
/// A client span for each attempt at a destination, inside the request's server span. Sits after load
/// balancing, so a request failed over to another destination shows one span per destination tried, each
/// with how it ended. The backend's <c>traceparent</c> names this span as its parent.
/// </summary>
internal sealed class AttemptSpanMiddleware(RequestDelegate next, ProxyTracing tracing, DestinationSlots slots)
{
    // Parsing the address on every attempt cost a Uri each. Kept with the model it was parsed from: a destination's
    // model is replaced when its config changes, so a changed address is parsed again.
    private static readonly SlotPart<Endpoint> EndpointPart = new();

    public Task InvokeAsync(HttpContext context) =>
        tracing.Owns(Activity.Current) ? TraceAsync(context) : next(context);

    private async Task TraceAsync(HttpContext context)
    {
        var feature = context.GetReverseProxyFeature();
        var destination = feature.AvailableDestinations.Count == 1 ? feature.AvailableDestinations[0] : null;
        using var activity = tracing.Source.StartActivity(context.Request.Method, ActivityKind.Client);
        if (activity is not { IsAllDataRequested: true })
        {
            await next(context);
            return;
        }

        activity.SetTag("http.request.method", context.Request.Method);
        if (destination is not null)
        {
            activity.SetTag("balancer.destination", destination.DestinationId);
            var endpoint = EndpointOf(destination);
            if (endpoint.Host is not null)
            {
                activity.SetTag("server.address", endpoint.Host);
                activity.SetTag("server.port", endpoint.Port);
            }
        }

        await next(context);

        if (context.GetForwarderErrorFeature() is { Error: not ForwarderError.None } error)
        {
            var kind = TransportFailure.Classify(error.Error, error.Exception);
            // Transport failures get the same labels as balancer_retries_total; other errors YARP's own name.
            var type = kind == FailureKind.None ? error.Error.ToString() : TransportFailure.Label(kind);
            activity.SetStatus(ActivityStatusCode.Error, type);
            activity.SetTag("error.type", type);
            return;
        }

        // Semantic conventions: for a client span any 4xx or 5xx answer is a failed call.
        ProxyTracing.TagStatusCode(activity, context.Response.StatusCode, failedFrom: 400);
    }

    private Endpoint EndpointOf(DestinationState destination)
    {
        var slot = slots.Of(destination);
        var model = destination.Model;
        if (slot.Get(EndpointPart) is { } endpoint && ReferenceEquals(endpoint.Model, model))
        {
            return endpoint;
        }

        endpoint = Endpoint.Of(model);
        slot.Set(EndpointPart, endpoint);
        return endpoint;
    }

    /// <summary>A destination address as the span's <c>server.*</c> tags want it, the port boxed once; <see cref="Model"/> is what it was read from.</summary>
    private sealed record Endpoint(DestinationModel Model, string? Host, object? Port)
    {
        public static Endpoint Of(DestinationModel model) =>
            Uri.TryCreate(model.Config.Address, UriKind.Absolute, out var uri) ? new(model, uri.Host, uri.Port) : new(model, null, null);
    }
}
