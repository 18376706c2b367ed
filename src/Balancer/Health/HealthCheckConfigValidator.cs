using Balancer.Configuration;
using Yarp.ReverseProxy.Configuration;

namespace Balancer.Health;

/// <summary>
/// A cluster's <c>HealthCheck</c> section, read as YARP reads it into its <see cref="HealthCheckConfig"/>: the
/// values YARP would take but an operator did not mean (a zero interval, a policy name misspelt), named by key.
/// </summary>
internal sealed class HealthCheckConfigValidator(OptionsSource source) : OptionsValidator<HealthCheckSection>(source)
{
    protected override void Check(HealthCheckSection options, OptionErrors errors)
    {
        errors.PositiveTimeSpan(options.Active?.Interval);
        errors.PositiveTimeSpan(options.Active?.Timeout);
        errors.PositiveTimeSpan(options.Passive?.ReactivationPeriod);
        errors.OneOf(options.Active?.Policy, ["ConsecutiveFailures"]);
        errors.OneOf(options.Passive?.Policy, [FirstFailurePassivePolicy.PolicyName, "TransportFailureRate"]);
        errors.OneOf(options.AvailableDestinationsPolicy, ["HealthyAndUnknown", "HealthyOrPanic"]);
    }
}

/// <summary>
/// The keys of YARP's <see cref="HealthCheckConfig"/> with settable properties: YARP's records have init-only ones,
/// which the configuration binding source generator does not set.
/// </summary>
internal sealed class HealthCheckSection
{
    public ActiveSection? Active { get; set; }

    public PassiveSection? Passive { get; set; }

    public string? AvailableDestinationsPolicy { get; set; }

    /// <summary>The keys of YARP's <see cref="ActiveHealthCheckConfig"/>.</summary>
    internal sealed class ActiveSection
    {
        public bool? Enabled { get; set; }

        public TimeSpan? Interval { get; set; }

        public TimeSpan? Timeout { get; set; }

        public string? Policy { get; set; }

        public string? Path { get; set; }

        public string? Query { get; set; }
    }

    /// <summary>The keys of YARP's <see cref="PassiveHealthCheckConfig"/>.</summary>
    internal sealed class PassiveSection
    {
        public bool? Enabled { get; set; }

        public string? Policy { get; set; }

        public TimeSpan? ReactivationPeriod { get; set; }
    }
}
