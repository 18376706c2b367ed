using Balancer.Configuration;

namespace Balancer.Readiness;

/// <summary>The <c>Balancer:Shutdown</c> section.</summary>
internal sealed class ShutdownOptionsValidator(OptionsSource source) : OptionsValidator<ShutdownOptions>(source)
{
    protected override void Check(ShutdownOptions options, OptionErrors errors)
    {
        errors.PositiveTimeSpan(options.DrainDelay, zeroAllowed: true);
    }
}
