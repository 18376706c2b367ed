using Balancer.Configuration;
using Yarp.ReverseProxy.Configuration;

namespace Balancer.Health;

/// <summary>
/// A cluster's <c>HealthCheck</c> section, bound to YARP's own <see cref="HealthCheckConfig"/>: the values YARP
/// would take but an operator did not mean (a zero interval, a policy name misspelt), named by key.
/// </summary>
internal sealed class HealthCheckConfigValidator(OptionsSource source) : OptionsValidator<HealthCheckConfig>(source)
{
    protected override void Check(HealthCheckConfig options, OptionErrors errors)
    {
        errors.PositiveTimeSpan(options.Active?.Interval);
        errors.PositiveTimeSpan(options.Active?.Timeout);
        errors.PositiveTimeSpan(options.Passive?.ReactivationPeriod);
        errors.OneOf(options.Active?.Policy, ["ConsecutiveFailures"]);
        errors.OneOf(options.Passive?.Policy, [FirstFailurePassivePolicy.PolicyName, "TransportFailureRate"]);
        errors.OneOf(options.AvailableDestinationsPolicy, ["HealthyAndUnknown", "HealthyOrPanic"]);
    }
}
