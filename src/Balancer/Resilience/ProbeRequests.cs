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
/// results are dropped before any health policy sees them, so a backend being redeployed does not flap.
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
    internal sealed class ProbeHandler(TimeProvider time) : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (ProbeMarks.AttemptOf(request) is not { } attempt)
            {
                return base.SendAsync(request, cancellationToken);
            }

            return attempt.Skipped
                ? Task.FromResult(new HttpResponseMessage(System.Net.HttpStatusCode.ServiceUnavailable) { RequestMessage = request })
                : TimedAsync(request, attempt, cancellationToken);
        }

        private async Task<HttpResponseMessage> TimedAsync(HttpRequestMessage request, ProbeAttempt attempt, CancellationToken cancellationToken)
        {
            var started = time.GetTimestamp();
            try
            {
                return await base.SendAsync(request, cancellationToken);
            }
            finally
            {
                attempt.Elapsed = time.GetElapsedTime(started);
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
                : inner.CreateRequest(cluster, destination);
            ProbeMarks.Mark(request, InMaintenance(cluster, destination) ? ProbeAttempt.Skip : tracker.ProbeStarting(destination));
            return request;
        }

        private bool InMaintenance(ClusterModel cluster, DestinationModel destination)
        {
            _proxyState ??= services.GetRequiredService<IProxyStateLookup>();
            _overrides ??= services.GetRequiredService<RuntimeOverrides>();
            if (!_proxyState.TryGetCluster(cluster.Config.ClusterId, out var state))
            {
                return false;
            }

            foreach (var candidate in state.Destinations.Values)
            {
                if (ReferenceEquals(candidate.Model, destination))
                {
                    return _overrides.ModeOf(state.ClusterId, candidate.DestinationId) == AdminMode.Maintenance;
                }
            }

            return false;
        }
    }
}
