namespace Balancer.Health;

/// <summary>
/// One health probe on its way: when it was created and, once the destination answered or the send failed, how
/// long the send took. Carried on the probe request so the outbound handler can time it, and kept by the tracker
/// until the probe round completes.
/// </summary>
internal sealed class ProbeAttempt(DateTimeOffset started, bool skipped = false)
{
    private long _elapsedTicks = -1;

    /// <summary>The mark of a probe that is never sent (its destination is in maintenance).</summary>
    public static ProbeAttempt Skip { get; } = new(DateTimeOffset.MinValue, skipped: true);

    public DateTimeOffset Started { get; } = started;

    public bool Skipped { get; } = skipped;

    /// <summary>Time to the response headers (or to the failure); null while the probe is under way.</summary>
    public TimeSpan? Elapsed
    {
        get
        {
            var ticks = Interlocked.Read(ref _elapsedTicks);
            return ticks < 0 ? null : TimeSpan.FromTicks(ticks);
        }
        set => Interlocked.Exchange(ref _elapsedTicks, value?.Ticks ?? -1);
    }
}
