using System.Diagnostics;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace Balancer.Telemetry;

/// <summary>
/// Writes the W3C trace context of the attempt span onto the request to the destination, replacing the
/// client's. Untraced requests keep the client's headers as they came.
/// </summary>
/// <remarks>
/// The HttpClient's own propagation is off (see <c>ResilientForwarderHttpClientFactory.ConfigureHandler</c>):
/// it would start an unexported activity of its own under the attempt span and hand the backend that one as
/// its parent, a span no trace viewer would ever find.
/// </remarks>
internal sealed class TraceContextTransformProvider(ProxyTracing tracing) : ITransformProvider
{
    public void ValidateRoute(TransformRouteValidationContext context)
    {
    }

    public void ValidateCluster(TransformClusterValidationContext context)
    {
    }

    public void Apply(TransformBuilderContext context) => context.AddRequestTransform(transform =>
    {
        var activity = Activity.Current;
        if (tracing.Owns(activity))
        {
            var headers = transform.ProxyRequest.Headers;
            headers.Remove("traceparent");
            headers.Remove("tracestate");
            // A W3C activity's Id is its traceparent.
            headers.TryAddWithoutValidation("traceparent", activity!.Id);
            if (!string.IsNullOrEmpty(activity.TraceStateString))
            {
                headers.TryAddWithoutValidation("tracestate", activity.TraceStateString);
            }
        }

        return ValueTask.CompletedTask;
    });
}
