using Balancer.Health;
using Balancer.Hosting;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Resilience;

/// <summary>
/// Marks YARP's active health probes so the outbound resilience handler can let them bypass the circuit
/// breaker: the probe is the judge of recovery and must reach the backend even while its circuit is open.
/// </summary>
internal static class ProbeRequests
{
    private static readonly HttpRequestOptionsKey<bool> Key = new("Balancer.HealthProbe");

    public static bool IsProbe(HttpRequestMessage request) => request.Options.TryGetValue(Key, out var probe) && probe;

    public static void Mark(HttpRequestMessage request) => request.Options.Set(Key, true);

    /// <summary>Decorates YARP's probe request factory (internal to YARP) with the mark.</summary>
    public static IServiceCollection MarkHealthProbes(this IServiceCollection services) =>
        services.Decorate<IProbingRequestFactory>((sp, inner) => new MarkingFactory(inner, sp.GetRequiredService<DestinationHealthTracker>()));

    /// <summary>Also tells the tracker when each probe starts, so it knows which probes postdate a failure.</summary>
    private sealed class MarkingFactory(IProbingRequestFactory inner, DestinationHealthTracker tracker) : IProbingRequestFactory
    {
        public HttpRequestMessage CreateRequest(ClusterModel cluster, DestinationModel destination)
        {
            tracker.ProbeStarting(destination);
            var request = inner.CreateRequest(cluster, destination);
            Mark(request);
            return request;
        }
    }
}
