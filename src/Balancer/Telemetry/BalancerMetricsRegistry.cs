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

    /// <summary>Retries and health changes per destination, written beside <see cref="Registry"/>'s series.</summary>
    internal DestinationEventCounts Events { get; } = new();

    /// <summary>Writes what <c>/metrics</c> serves: <see cref="Registry"/>'s series, then <see cref="Events"/>.</summary>
    public async Task ExportAsync(Stream output, ExpositionFormat format = ExpositionFormat.PrometheusText, CancellationToken cancel = default)
    {
        if (format != ExpositionFormat.OpenMetricsText)
        {
            await Registry.CollectAndExportAsTextAsync(output, format, cancel);
            await Events.WriteToAsync(output, openMetrics: false, cancel);
            return;
        }

        // OpenMetrics ends with a terminator, after which nothing may follow: the event counters go before it.
        var body = new HoldBackStream(output, EndOfMetrics.Length);
        await Registry.CollectAndExportAsTextAsync(body, format, cancel);
        if (!body.Held.SequenceEqual(EndOfMetrics))
        {
            throw new InvalidOperationException("prometheus-net's OpenMetrics exposition did not end with '# EOF'.");
        }

        await Events.WriteToAsync(output, openMetrics: true, cancel);
        await output.WriteAsync(EndOfMetrics, cancel);
    }

    private static readonly byte[] EndOfMetrics = "# EOF\n"u8.ToArray();
}
