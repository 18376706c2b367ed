using Prometheus;

namespace Balancer.Telemetry;

/// <summary>
/// The Prometheus registry of one balancer instance, served on the management listener's <c>/metrics</c>.
/// </summary>
/// <remarks>
/// A registry per instance rather than prometheus-net's static default one: two balancers in one process
/// (the tests run several) must not share counters, and the default registry's runtime collectors switch
/// on event sources that cost something on every proxied request.
/// </remarks>
public sealed class BalancerMetricsRegistry
{
    public BalancerMetricsRegistry()
    {
        Registry = Metrics.NewCustomRegistry();
        Factory = Metrics.WithCustomRegistry(Registry);
        // Process CPU, memory, GC and thread counts, read when scraped (no event listeners on the request path).
        DotNetStats.Register(Registry);
    }

    public CollectorRegistry Registry { get; }

    /// <summary>Creates collectors in <see cref="Registry"/>; every feature registers its own series here.</summary>
    public IMetricFactory Factory { get; }
}
