using Balancer.Telemetry;
using Microsoft.AspNetCore.Http.Features;
using Yarp.ReverseProxy.Model;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace Balancer.Resilience;

/// <summary>
/// Outermost handler of each cluster's outbound client: while a request marked safe to send again waits for
/// its response headers, it is also cancelled when its destination is marked Down, and the cancellation
/// surfaces as a <see cref="DestinationMarkedDownException"/> for the retry middleware to act on. Once the
/// headers have arrived the link is gone: a response under way is never cut.
/// </summary>
/// <remarks>
/// Outside the circuit breaker, so a withdrawn request never counts as the destination's failure. Unmarked
/// requests (probes, bodies that cannot be replayed, methods that are not idempotent) pass straight through.
/// </remarks>
internal sealed class RedispatchHandler(DownSignals signals) : DelegatingHandler
{
    private static readonly HttpRequestOptionsKey<DestinationState> DestinationKey = new("Balancer.RedispatchOnDown");

    /// <summary>Lets <paramref name="request"/> be withdrawn when <paramref name="destination"/> is marked Down.</summary>
    public static void MarkWithdrawable(HttpRequestMessage request, DestinationState destination) => request.Options.Set(DestinationKey, destination);

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
        request.Options.TryGetValue(DestinationKey, out var destination) && destination is not null
            ? SendWithdrawableAsync(request, signals.NextDown(destination), cancellationToken)
            : base.SendAsync(request, cancellationToken);

    private async Task<HttpResponseMessage> SendWithdrawableAsync(HttpRequestMessage request, CancellationToken down, CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, down);
        try
        {
            return await base.SendAsync(request, linked.Token);
        }
        catch (Exception e) when (down.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new DestinationMarkedDownException(e);
        }
    }

    /// <summary>
    /// Marks each outgoing request that the retry middleware may send again (<see cref="ReplaySafe"/>) with the
    /// destination it goes to; the handler sees only the outgoing message.
    /// </summary>
    internal sealed class MarkingTransformProvider : ITransformProvider
    {
        public void ValidateRoute(TransformRouteValidationContext context)
        {
        }

        public void ValidateCluster(TransformClusterValidationContext context)
        {
        }

        public void Apply(TransformBuilderContext context) => context.AddRequestTransform(static transform =>
        {
            var http = transform.HttpContext;
            if (http.Features.Get<ReplaySafe>() is not null && http.Features.Get<IReverseProxyFeature>()?.ProxiedDestination is { } destination)
            {
                MarkWithdrawable(transform.ProxyRequest, destination);
            }

            return ValueTask.CompletedTask;
        });
    }
}

/// <summary>
/// Set by the retry middleware on a request it would send to another destination if this attempt were
/// withdrawn: an idempotent method, a body it can replay, attempts and destinations left.
/// </summary>
internal sealed class ReplaySafe
{
    public static readonly ReplaySafe Instance = new();

    private ReplaySafe()
    {
    }

    /// <summary>Sets or clears the mark for the next attempt.</summary>
    public static void Mark(IFeatureCollection features, bool safe)
    {
        if (safe)
        {
            features.Set(Instance);
        }
        else if (features.Get<ReplaySafe>() is not null)
        {
            features.Set<ReplaySafe>(null);
        }
    }
}
