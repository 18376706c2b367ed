using Balancer.LoadBalancing;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace Balancer.Headers;

/// <summary>
/// Header hygiene on every route: fields named in <c>Connection</c> are dropped in both directions, and the
/// forwarding headers are appended to or replaced depending on whether the peer is a trusted proxy.
/// </summary>
/// <remarks>
/// YARP's default forwarders set <c>X-Forwarded-For</c> to the peer whoever it is, and drop <c>Forwarded</c>.
/// The action (append or replace) has to be chosen per request, from the peer, which YARP's configured
/// actions cannot do: this takes their place. A route that configures its own <c>X-Forwarded</c> or
/// <c>Forwarded</c> transform keeps it.
/// </remarks>
internal sealed class HeaderTransformProvider(ClientIpResolver resolver) : ITransformProvider
{
    public void ValidateRoute(TransformRouteValidationContext context)
    {
    }

    public void ValidateCluster(TransformClusterValidationContext context)
    {
    }

    public void Apply(TransformBuilderContext context)
    {
        // First, so the forwarding headers below are built from what is left after the client's hop-only fields go.
        context.AddRequestTransform(static transform =>
        {
            if (ConnectionHeaders.Named(transform.HttpContext.Request.Headers.Connection) is { } names)
            {
                foreach (var name in names)
                {
                    RequestTransform.RemoveHeader(transform, name);
                }
            }

            return ValueTask.CompletedTask;
        });

        context.AddResponseTransform(static transform =>
        {
            // Read as stored: the typed Connection property would build the response's general-headers object.
            if (transform.ProxyResponse is { } response && response.Headers.NonValidated.TryGetValues("Connection", out var connection)
                && ConnectionHeaders.Named(connection.ToArray()) is { } names)
            {
                var headers = transform.HttpContext.Response.Headers;
                foreach (var name in names)
                {
                    headers.Remove(name);
                }
            }

            return ValueTask.CompletedTask;
        });

        if (!context.UseDefaultForwarders.GetValueOrDefault(true))
        {
            return;
        }

        context.UseDefaultForwarders = false;
        context.AddXForwardedProto(action: ForwardedTransformActions.Set);
        context.AddXForwardedHost(action: ForwardedTransformActions.Set);
        context.AddXForwardedPrefix(action: ForwardedTransformActions.Set);
        context.AddRequestTransform(transform =>
        {
            var request = transform.HttpContext.Request;
            var peer = transform.HttpContext.Connection.RemoteIpAddress;
            var trusted = resolver.IsTrustedPeer(peer);

            var incomingFor = RequestTransform.TakeHeader(transform, ForwardedHeaders.XForwardedFor);
            var incoming = RequestTransform.TakeHeader(transform, ForwardedHeaders.Forwarded);
            var host = request.Host.Value ?? string.Empty;
            var values = (trusted && (incomingFor.Count > 0 || incoming.Count > 0))
                ? new ForwardedHeaders.Values(ForwardedHeaders.XForwardedForValue(incomingFor, peer, trusted), ForwardedHeaders.ForwardedValue(incoming, peer, trusted, request.Scheme, host))
                : ForwardedHeaders.ThisHop(transform.HttpContext, peer, request.Scheme, host);
            if (values.XForwardedFor is not null)
            {
                RequestTransform.AddHeader(transform, ForwardedHeaders.XForwardedFor, values.XForwardedFor);
            }

            RequestTransform.AddHeader(transform, ForwardedHeaders.Forwarded, values.Forwarded);
            return ValueTask.CompletedTask;
        });
    }
}
