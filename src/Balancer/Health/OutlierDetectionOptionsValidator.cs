using Balancer.Configuration;

namespace Balancer.Health;

/// <summary>The <c>Balancer:OutlierDetection</c> section.</summary>
internal sealed class OutlierDetectionOptionsValidator(OptionsSource source) : OptionsValidator<OutlierDetectionOptions>(source)
{
    protected override void Check(OutlierDetectionOptions options, OptionErrors errors)
    {
        errors.PositiveTimeSpan(options.MaxEjectionTime);
        errors.WholeNumber(options.MaxEjectionPercent, 0, 100);
        errors.WholeNumber(options.SuccessfulProbesToReturn, 1, 100);
    }
}
