using Balancer.Configuration;

namespace Balancer.Hosting;

/// <summary>The <c>Balancer:Limits</c> section.</summary>
internal sealed class LimitsOptionsValidator(OptionsSource source) : OptionsValidator<LimitsOptions>(source)
{
    protected override void Check(LimitsOptions options, OptionErrors errors)
    {
        errors.WholeNumber(options.MaxRequestHeadersTotalSize, 1, int.MaxValue);
        errors.WholeNumber(options.MaxRequestHeaderCount, 1, int.MaxValue);
        errors.WholeNumber(options.MaxRequestLineSize, 1, int.MaxValue);
        errors.WholeNumber(options.MaxRequestBodySize, 1, long.MaxValue);
        errors.WholeNumber(options.MaxConcurrentConnections, 1, int.MaxValue);
        errors.WholeNumber(options.MaxConcurrentUpgradedConnections, 1, int.MaxValue);
        errors.PositiveTimeSpan(options.RequestHeadersTimeout);
        errors.PositiveTimeSpan(options.KeepAliveTimeout);
        errors.Number(options.MinRequestBodyDataRate, IsDataRate, DataRateMust);
        errors.Number(options.MinResponseDataRate, IsDataRate, DataRateMust);
        CheckGracePeriod(errors, options.MinRequestBodyDataRateGracePeriod);
        CheckGracePeriod(errors, options.MinResponseDataRateGracePeriod);
    }

    private const string DataRateMust = "must be a number of bytes per second, 0 or more (0 turns the check off)";

    private static bool IsDataRate(double value) => value >= 0 && double.IsFinite(value);

    /// <summary>Kestrel checks data rates on its once-a-second heartbeat, so it refuses a shorter grace period.</summary>
    private static void CheckGracePeriod(OptionErrors errors, TimeSpan period, [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(period))] string property = "")
    {
        var name = OptionErrors.NameOf(property);
        if (errors.Source.Raw(name) is { } text && !errors.Source.Failed(name) && period <= TimeSpan.FromSeconds(1))
        {
            errors.Add(name, $"must be longer than 1 second, not '{text}'");
        }
        else
        {
            errors.PositiveTimeSpan(period, property: property);
        }
    }
}
