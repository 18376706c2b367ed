using Balancer.Health;
using Balancer.Hosting;
using Balancer.Runtime;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Resilience;

/// <summary>
/// Marks YARP's active health probes so the outbound resilience handler can let them bypass the circuit
/// breaker: the probe is the judge of recovery and must reach the backend even while its circuit is open.
/// Probes of destinations in maintenance are marked as skipped: they never leave the process, and their
/// results are dropped before any health policy sees them, so a backend being redeployed does not flap. So are
/// probes that waited too long for their turn to an address.
/// Every probe sent carries its <see cref="ProbeAttempt"/>, so its latency reaches the status API.
/// </summary>
internal static class ProbeRequests
{
    /// <summary>
    /// Decorates YARP's probe request factory (internal to YARP) with the mark, and builds the gRPC health
    /// probes of the clusters that ask for them.
    /// </summary>
    public static IServiceCollection MarkHealthProbes(this IServiceCollection services) =>
        services.Decorate<IProbingRequestFactory>((sp, inner) => new MarkingFactory(inner, sp.GetRequiredService<DestinationHealthTracker>(), sp));

    /// <summary>
    /// Answers skipped probes itself, without a connection, and times the probes it sends (to the response
    /// headers, as the proxy's own latency is measured); every other request passes through after one lookup.
    /// </summary>
    /// <remarks>
    /// YARP sends a cluster's probes all at once. Destinations that share an address (many entries for one
    /// backend, or one service behind many names) share its connection pool, so a round of thousands of probes
    /// would open thousands of connections to it and take the descriptors proxied requests need. At most
    /// <see cref="ProbesPerAddress"/> probes per address are on the wire at once; a probe still waiting for its
    /// turn when its timeout ends was never sent and counts as skipped, so its destination keeps its health.
    /// </remarks>
    internal sealed class ProbeHandler(TimeProvider time) : DelegatingHandler
    {
        public const int ProbesPerAddress = 64;

        private const long MaxProbeBody = 64 * 1024;

        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, SemaphoreSlim> _turns = new(StringComparer.OrdinalIgnoreCase);

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request is not ProbeMessage { Attempt: { } attempt } probe)
            {
                return base.SendAsync(request, cancellationToken);
            }

            return attempt.Skipped
                ? Task.FromResult(Unsent(request))
                : TimedAsync(probe, attempt, cancellationToken);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                foreach (var turn in _turns.Values)
                {
                    turn.Dispose();
                }
            }

            base.Dispose(disposing);
        }

        private static HttpResponseMessage Unsent(HttpRequestMessage request) =>
            new(System.Net.HttpStatusCode.ServiceUnavailable) { RequestMessage = request };

        private async Task<HttpResponseMessage> TimedAsync(ProbeMessage request, ProbeAttempt attempt, CancellationToken cancellationToken)
        {
            var turn = request.RequestUri is { } uri
                ? _turns.GetOrAdd(uri.GetLeftPart(UriPartial.Authority), static _ => new SemaphoreSlim(ProbesPerAddress))
                : null;
            if (turn is not null)
            {
                try
                {
                    await turn.WaitAsync(cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    ProbeMarks.Mark(request, ProbeAttempt.Skip);
                    return Unsent(request);
                }
            }

            var started = time.GetTimestamp();
            try
            {
                HttpResponseMessage response;
                try
                {
                    response = await base.SendAsync(request, cancellationToken);
                }
                finally
                {
                    attempt.Elapsed = time.GetElapsedTime(started);
                }

                if (turn is not null)
                {
                    await ReadBodyAsync(response, cancellationToken);
                }

                return response;
            }
            finally
            {
                turn?.Release();
            }
        }

        /// <summary>
        /// YARP keeps every probe's response until the whole round is judged, and an unread body keeps its
        /// connection: read it here, so the connection goes back to the pool for the next probe in line.
        /// </summary>
        private static async Task ReadBodyAsync(HttpResponseMessage response, CancellationToken cancellationToken)
        {
            try
            {
                await response.Content.LoadIntoBufferAsync(MaxProbeBody, cancellationToken);
            }
            catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException)
            {
                // The status is all a probe is judged by; a body too long or cut off only loses the connection.
                response.Content.Dispose();
            }
        }
    }

    /// <summary>Also tells the tracker when each probe starts, so it knows which probes postdate a failure.</summary>
    private sealed class MarkingFactory(IProbingRequestFactory inner, DestinationHealthTracker tracker, IServiceProvider services) : IProbingRequestFactory
    {
        // Resolved on first use: YARP's proxy state depends on the health checks that depend on this factory.
        private IProxyStateLookup? _proxyState;
        private RuntimeOverrides? _overrides;

        public HttpRequestMessage CreateRequest(ClusterModel cluster, DestinationModel destination)
        {
            var request = Grpc.GrpcHealthProbe.IsEnabled(cluster.Config)
                ? Grpc.GrpcHealthProbe.CreateRequest(cluster, destination)
                : ProbeMessage.From(inner.CreateRequest(cluster, destination));
            _proxyState ??= services.GetRequiredService<IProxyStateLookup>();
            var state = _proxyState.TryGetCluster(cluster.Config.ClusterId, out var found) ? found : null;
            ProbeMarks.Mark(request, InMaintenance(state, destination) ? ProbeAttempt.Skip : tracker.ProbeStarting(state, destination));
            return request;
        }

        private bool InMaintenance(ClusterState? state, DestinationModel destination)
        {
            _overrides ??= services.GetRequiredService<RuntimeOverrides>();
            if (state is null)
            {
                return false;
            }

            // From the few overrides to the destination, not through every destination: a probe round asks this
            // once per destination.
            foreach (var id in _overrides.InMode(state.ClusterId, AdminMode.Maintenance))
            {
                if (state.Destinations.TryGetValue(id, out var candidate) && ReferenceEquals(candidate.Model, destination))
                {
                    return true;
                }
            }

            return false;
        }
    }
}
