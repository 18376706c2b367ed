namespace Balancer.Telemetry;

/// <summary>The <c>Balancer:Tracing</c> section; it matters only while tracing is on (<c>OTEL_EXPORTER_OTLP_ENDPOINT</c> set).</summary>
public sealed class TracingOptions
{
    /// <summary>
    /// Share of requests without a sampled parent that start a trace (0 to 1). A client's own
    /// <c>traceparent</c> decides for its request: sampled is traced, not sampled is not (W3C parent-based
    /// sampling, as OpenTelemetry does by default). Read on every change of the file.
    /// </summary>
    public double SampleRatio { get; set; } = 1.0;

    /// <summary>
    /// At most this many new traces a second (on average; bursts of up to a second's worth), after the
    /// <see cref="SampleRatio"/> draw; 0 for no cap. Bounds what tracing costs under heavy load: every
    /// request is traced below the cap, a steady share above it. Requests whose client sent a sampled
    /// <c>traceparent</c> are always traced and not counted. Read on every change of the file.
    /// </summary>
    public double MaxTracesPerSecond { get; set; } = DefaultMaxTracesPerSecond;

    /// <summary>
    /// Why 100 and not more: under heavy load a traced request costs far more than its share, and a higher
    /// cap cost a saturated balancer several times as much throughput (docs/benchmarks.md). 100 a second is
    /// still a trace every 10 ms, 8.6 million a day.
    /// </summary>
    public const double DefaultMaxTracesPerSecond = 100;

    /// <summary>
    /// Trace with OpenTelemetry's ASP.NET Core and HttpClient instrumentation and YARP's own ActivitySource
    /// (<c>proxy.forwarder</c>, health probe rounds) instead of the balancer's own two spans: more spans per
    /// request, at a cost that sampling barely lowers (see <see cref="ProxyTracing"/>). Read at start-up.
    /// </summary>
    public bool Detailed { get; set; }
}
