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
        _ = new ProcessStats(Registry);
    }

    public CollectorRegistry Registry { get; }

    /// <summary>Creates collectors in <see cref="Registry"/>; every feature registers its own series here.</summary>
    public IMetricFactory Factory { get; }

    /// <summary>Retries and health changes per destination, written beside <see cref="Registry"/>'s series.</summary>
    internal DestinationEventCounts Events { get; } = new();

    private readonly List<Func<ExpositionWriter, CancellationToken, ValueTask>> _writers = [];

    /// <summary>
    /// Adds families that <paramref name="write"/> writes itself after <see cref="Registry"/>'s series: the per-destination
    /// ones, which at thousands of destinations cost a fraction of what prometheus-net's serializer takes for them.
    /// </summary>
    internal void AddWriter(Func<ExpositionWriter, CancellationToken, ValueTask> write)
    {
        lock (_writers)
        {
            _writers.Add(write);
        }
    }

    /// <summary>Writes what <c>/metrics</c> serves: <see cref="Registry"/>'s series, then the families of <see cref="AddWriter"/>, then <see cref="Events"/>.</summary>
    public async Task ExportAsync(Stream output, ExpositionFormat format = ExpositionFormat.PrometheusText, CancellationToken cancel = default)
    {
        var openMetrics = format == ExpositionFormat.OpenMetricsText;
        // OpenMetrics ends with a terminator, after which nothing may follow: the balancer's own families go before it.
        var body = openMetrics ? new HoldBackStream(output, EndOfMetrics.Length) : null;
        await Registry.CollectAndExportAsTextAsync(body ?? output, format, cancel);
        if (body is not null && !body.Held.SequenceEqual(EndOfMetrics))
        {
            throw new InvalidOperationException("prometheus-net's OpenMetrics exposition did not end with '# EOF'.");
        }

        Func<ExpositionWriter, CancellationToken, ValueTask>[] writers;
        lock (_writers)
        {
            writers = [.. _writers];
        }

        using var writer = new ExpositionWriter(output, openMetrics);
        foreach (var write in writers)
        {
            await write(writer, cancel);
        }

        await Events.WriteAsync(writer, cancel);
        await writer.FlushAsync(cancel);
        if (openMetrics)
        {
            await output.WriteAsync(EndOfMetrics, cancel);
        }
    }

    private static readonly byte[] EndOfMetrics = "# EOF\n"u8.ToArray();
}
