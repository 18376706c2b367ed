using Balancer.Configuration;

namespace Balancer.AccessLog;

/// <summary>The <c>Balancer:AccessLog</c> section.</summary>
internal sealed class AccessLogOptionsValidator(OptionsSource source) : OptionsValidator<AccessLogOptions>(source)
{
    protected override void Check(AccessLogOptions options, OptionErrors errors)
    {
        errors.WholeNumber(options.BufferLines, 1, 10_000_000);
        if (options.Enabled && options.Path!.Trim() != AccessLogOptions.StandardOutput)
        {
            ConfigChecks.FileToWrite(errors, nameof(options.Path), options.Path, "name a file in it, or `stdout`");
        }

    }
}
