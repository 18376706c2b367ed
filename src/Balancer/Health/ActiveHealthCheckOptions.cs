namespace Balancer.Health;

/// <summary>The <c>Balancer:ActiveHealthChecks</c> section: how the active probes of all clusters share the process. Read at start-up.</summary>
public sealed class ActiveHealthCheckOptions
{
    /// <summary>
    /// Most active health probes on their way at once, over all clusters. A probe whose turn comes while this
    /// many are out waits for one of them to finish; a destination whose probe is still out or waiting gets no
    /// second one. The cap matters at start, when every destination is probed at once, and when destinations
    /// are slow; spread over the interval, a few probes are out at a time. 256 probes in flight are about half a
    /// megabyte; a first round to a few shared addresses is held to the probe handler's 64 per address first.
    /// </summary>
    public int MaxConcurrentProbes { get; set; } = 256;
}

/// <summary>The <c>Balancer:ActiveHealthChecks</c> section.</summary>
internal sealed class ActiveHealthCheckOptionsValidator(Configuration.OptionsSource source) : Configuration.OptionsValidator<ActiveHealthCheckOptions>(source)
{
    protected override void Check(ActiveHealthCheckOptions options, Configuration.OptionErrors errors) =>
        errors.WholeNumber(options.MaxConcurrentProbes, 1, 10_000);
}
