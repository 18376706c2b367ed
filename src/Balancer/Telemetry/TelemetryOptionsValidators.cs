using Balancer.Configuration;

namespace Balancer.Telemetry;

/// <summary>The <c>Balancer:Tracing</c> section.</summary>
internal sealed class TracingOptionsValidator(OptionsSource source) : OptionsValidator<TracingOptions>(source)
{
    protected override void Check(TracingOptions options, OptionErrors errors)
    {
        errors.Fraction(options.SampleRatio, zeroAllowed: true);
        errors.Number(options.MaxTracesPerSecond, value => double.IsFinite(value) && value >= 0, "must be a number of traces a second, 0 or more (0: no cap)");
    }
}

/// <summary>The <c>Balancer:Metrics</c> section.</summary>
internal sealed class MetricsOptionsValidator(OptionsSource source) : OptionsValidator<MetricsOptions>(source)
{
    protected override void Check(MetricsOptions options, OptionErrors errors)
    {
        // A switch that is not true or false is reported by the type check every validator ends with.
        errors.WholeNumber(options.PerDestinationHistogramsMaxDestinations, 0, 1_000_000);
    }
}
