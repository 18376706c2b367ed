using Balancer.PerDestination;
using Balancer.Telemetry;
using Microsoft.AspNetCore.Http.Features;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;

namespace Balancer.Resilience;

/// <summary>
/// Sends requests bound for one destination that are safe to send again: while one waits for its response
/// headers, it is also cancelled when its destination is marked Down, and the cancellation surfaces as a
/// <see cref="DestinationMarkedDownException"/> for the retry middleware to act on. Once the headers have
/// arrived the link is gone: a response under way is never cut.
/// </summary>
/// <remarks>
/// One per destination, over the cluster's <see cref="BreakerHandler"/> (<see cref="WithdrawableClient"/>),
/// so that a request needs no mark naming its destination; the breaker's handler does the linking in the
/// same step as the breaker.
/// </remarks>
internal sealed class RedispatchHandler(BreakerHandler sends, DownSignals.Signal down) : HttpMessageHandler
{
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
        sends.SendAsync(request, down, cancellationToken);
}

/// <summary>
/// A cluster's outbound client that also keeps, per destination, a client sending through a
/// <see cref="RedispatchHandler"/> over the same handlers (and so the same connections, breakers and probes).
/// </summary>
internal sealed class WithdrawableClient : HttpMessageInvoker
{
    // In the destination's slot, so that a destination costs no weak-table entry of its own per cluster client: the
    // request path finds it with the one lookup that also finds the destination's metrics.
    private static readonly SlotPart<DestinationClient> ClientPart = new();
    private readonly DestinationSlots _slots;
    private readonly DownSignals _signals;
    private readonly BreakerHandler _sends;

    /// <param name="handler">The cluster's handlers, as every request is sent through them.</param>
    /// <param name="sends">The handler under <paramref name="handler"/> that carries proxied requests.</param>
    /// <param name="signals">Where each destination's Down signal comes from.</param>
    public WithdrawableClient(HttpMessageHandler handler, BreakerHandler sends, DownSignals signals)
        : base(handler, disposeHandler: true)
    {
        _slots = signals.Slots;
        _signals = signals;
        _sends = sends;
    }

    /// <summary>The client that withdraws a request from <paramref name="destination"/> when it is marked Down.</summary>
    public HttpMessageInvoker For(DestinationState destination)
    {
        var slot = _slots.Of(destination);
        if (slot.Get(ClientPart) is { } client && ReferenceEquals(client.Owner, this))
        {
            return client;
        }

        // First use, or the cluster's client was replaced (its config changed): the destination's client sends through
        // this one's handlers. Never disposed itself: it owns nothing, and the cluster's handlers belong to this client.
        client = new DestinationClient(this, new RedispatchHandler(_sends, _signals.For(destination)));
        slot.Set(ClientPart, client);
        return client;
    }

    /// <summary>One destination's client, and the cluster's client it was made by.</summary>
    private sealed class DestinationClient(WithdrawableClient owner, HttpMessageHandler handler) : HttpMessageInvoker(handler, disposeHandler: false)
    {
        public WithdrawableClient Owner { get; } = owner;
    }
}

/// <summary>
/// Sends each request that the retry middleware may send again (<see cref="ReplaySafe"/>) through its
/// destination's <see cref="WithdrawableClient.For"/> client; every other request goes as YARP sends it.
/// </summary>
internal sealed class WithdrawingForwarder(IHttpForwarder inner) : IHttpForwarder
{
    public ValueTask<ForwarderError> SendAsync(HttpContext context, string destinationPrefix, HttpMessageInvoker httpClient, ForwarderRequestConfig requestConfig, HttpTransformer transformer) =>
        inner.SendAsync(context, destinationPrefix, Choose(context, httpClient), requestConfig, transformer);

    public ValueTask<ForwarderError> SendAsync(HttpContext context, string destinationPrefix, HttpMessageInvoker httpClient, ForwarderRequestConfig requestConfig, HttpTransformer transformer, CancellationToken cancellationToken) =>
        inner.SendAsync(context, destinationPrefix, Choose(context, httpClient), requestConfig, transformer, cancellationToken);

    private static HttpMessageInvoker Choose(HttpContext context, HttpMessageInvoker httpClient) =>
        httpClient is WithdrawableClient cluster
        && context.Features.Get<ReplaySafe>() is not null
        && context.Features.Get<IReverseProxyFeature>()?.ProxiedDestination is { } destination
            ? cluster.For(destination)
            : httpClient;
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
