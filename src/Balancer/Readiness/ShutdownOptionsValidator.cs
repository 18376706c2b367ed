using Balancer.Configuration;

namespace Balancer.Readiness;

/// <summary>The <c>Balancer:Shutdown</c> section.</summary>
internal sealed class ShutdownOptionsValidator(OptionsSource source) : OptionsValidator<ShutdownOptions>(source)
{
    protected override void Check(ShutdownOptions options, OptionErrors errors)
    {
        errors.PositiveTimeSpan(options.DrainDelay, zeroAllowed: true);
        if (!string.IsNullOrWhiteSpace(options.TrackFile))
        {
            ConfigChecks.FileToWrite(errors, nameof(options.TrackFile), options.TrackFile, "name the file keepalived's track_file watches");
        }
    }
}
