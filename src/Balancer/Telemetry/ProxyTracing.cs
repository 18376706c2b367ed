using System.Diagnostics;
using System.Globalization;
using Balancer.Configuration;
using Microsoft.Extensions.Options;
using Prometheus;

namespace Balancer.Telemetry;

/// <summary>
/// The balancer's own spans (unless <see cref="Detailed"/>): one server span per proxied request and one client span per attempt at a
/// destination, from the <see cref="SourceName"/> ActivitySource. Decides sampling before any Activity exists.
/// </summary>
/// <remarks>
/// Why not OpenTelemetry's ASP.NET Core and HttpClient instrumentation (and YARP's own source): an
/// OpenTelemetry sampler runs only once an ActivitySource is asked for an activity, and a "drop" still
/// creates it (as propagation-only data) so the context can flow. Three such activities per request, with
/// the diagnostic callbacks around them, cost nearly as much whether the trace is kept or not (figures in
/// docs/benchmarks.md). Deciding first means a
/// request that is not traced creates nothing, and its client's <c>traceparent</c> (if any) reaches the
/// backend untouched. A traced request gets exactly the spans an operator of a balancer needs: which
/// destination each attempt went to, and how it failed.
/// </remarks>
internal sealed class ProxyTracing
{
    /// <summary>Name of the ActivitySource the tracer provider listens to.</summary>
    public const string SourceName = "Balancer";

    // Every port and status code fits; the array is filled only where used (0.5 MB of references).
    private static readonly object?[] Boxes = new object?[ushort.MaxValue + 1];

    private static readonly string?[] Texts = new string?[600];

    private readonly ActivitySource _source = new(SourceName);
    private readonly Func<double> _random;
    private readonly TraceRateLimiter _limiter;
    private readonly Counter.Child? _started;
    private readonly Counter.Child? _rateLimited;
    private double _ratio;

    /// <param name="detailed"><see cref="TracingOptions.Detailed"/>, as the tracer provider was built with it.</param>
    /// <param name="random">Uniform in [0, 1); the tests pass a scripted sequence.</param>
    /// <param name="time">The clock of <see cref="TracingOptions.MaxTracesPerSecond"/>.</param>
    /// <param name="metrics">Where to count new traces started and refused by the cap; none in unit tests.</param>
    public ProxyTracing(IOptionsMonitor<BalancerOptions> options, bool detailed, Func<double> random, TimeProvider time, IMetricFactory? metrics = null)
    {
        _random = random;
        _limiter = new TraceRateLimiter(time);
        Detailed = detailed;
        Apply(options.CurrentValue.Tracing);
        // Read once per change, not per request: CurrentValue is a dictionary lookup.
        options.OnChange(o => Apply(o.Tracing));
        if (metrics is not null)
        {
            var decisions = metrics.CreateCounter(
                "balancer_tracing_new_traces_total",
                "Requests without a sampled traceparent that the sample ratio picked for a new trace, by result: started, or rate_limited (over Balancer:Tracing:MaxTracesPerSecond, not traced).",
                new CounterConfiguration { LabelNames = ["result"] });
            _started = decisions.WithLabels("started");
            _rateLimited = decisions.WithLabels("rate_limited");
        }
    }

    public ActivitySource Source => _source;

    /// <summary>
    /// <see cref="TracingOptions.Detailed"/> as it was at start-up: OpenTelemetry's instrumentation makes the
    /// spans, sampled by <see cref="RatioSampler"/>, and the balancer's own middleware stays out.
    /// </summary>
    public bool Detailed { get; }

    /// <summary>
    /// Whether to trace a request: its parent's sampled flag when it came with a valid <c>traceparent</c>,
    /// otherwise <see cref="DrawNewTrace"/>. <paramref name="parent"/> is the parsed
    /// parent, or default for a new trace.
    /// </summary>
    public bool ShouldTrace(string? traceparent, string? tracestate, out ActivityContext parent)
    {
        if (traceparent is not null && ActivityContext.TryParse(traceparent, tracestate, isRemote: true, out parent))
        {
            return (parent.TraceFlags & ActivityTraceFlags.Recorded) != 0;
        }

        parent = default;
        return DrawNewTrace();
    }

    /// <summary>
    /// Whether a request without a sampled parent starts a trace: a draw at <see cref="TracingOptions.SampleRatio"/>,
    /// then the <see cref="TracingOptions.MaxTracesPerSecond"/> cap.
    /// </summary>
    public bool DrawNewTrace()
    {
        var ratio = _ratio;
        if (!(ratio >= 1 || (ratio > 0 && _random() < ratio)))
        {
            return false;
        }

        if (_limiter.TryAcquire())
        {
            _started?.Inc();
            return true;
        }

        _rateLimited?.Inc();
        return false;
    }

    private void Apply(TracingOptions options)
    {
        _ratio = options.SampleRatio;
        _limiter.SetLimit(options.MaxTracesPerSecond);
    }

    /// <summary>The response status on a span, which fails (status error, <c>error.type</c> the code) from <paramref name="failedFrom"/> up.</summary>
    public static void TagStatusCode(Activity activity, int status, int failedFrom)
    {
        activity.SetTag("http.response.status_code", Box(status));
        if (status >= failedFrom)
        {
            activity.SetStatus(ActivityStatusCode.Error);
            activity.SetTag("error.type", Text(status));
        }
    }

    /// <summary>
    /// An int tag as a shared box: a tag's value is an object, and a fresh box for every status code and port
    /// of every span is garbage the request path need not make. Boxes are immutable, so sharing is safe.
    /// </summary>
    public static object Box(int value)
    {
        if ((uint)value >= (uint)Boxes.Length)
        {
            return value;
        }

        // A benign race: two threads may each box the same value once; either box is right.
        return Boxes[value] ??= value;
    }

    /// <summary>True when <paramref name="activity"/> is one of ours, i.e. the request is being traced.</summary>
    public bool Owns(Activity? activity) => activity is not null && ReferenceEquals(activity.Source, _source);

    private static string Text(int status) =>
        (uint)status < (uint)Texts.Length
            ? Texts[status] ??= status.ToString(CultureInfo.InvariantCulture)
            : status.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// OpenTelemetry's sampler for <see cref="ProxyTracing.Detailed"/> tracing, below a parent-based one: a new
/// trace at the live <see cref="TracingOptions.SampleRatio"/>, so both modes sample by the same key.
/// </summary>
internal sealed class RatioSampler(ProxyTracing tracing) : OpenTelemetry.Trace.Sampler
{
    public override OpenTelemetry.Trace.SamplingResult ShouldSample(in OpenTelemetry.Trace.SamplingParameters samplingParameters) =>
        new(tracing.DrawNewTrace() ? OpenTelemetry.Trace.SamplingDecision.RecordAndSample : OpenTelemetry.Trace.SamplingDecision.Drop);
}
