using System.Globalization;
using Yarp.ReverseProxy.Model;

namespace Balancer.Runtime;

/// <summary>
/// <c>Metadata.SlowStart</c> (a time span, on a destination or its cluster): after a destination recovers
/// from Down or leaves maintenance, its weight ramps linearly from a tenth to the full weight over that time.
/// </summary>
/// <remarks>
/// The ramp moves in <see cref="Steps"/> equal steps, weights counted in twentieths: a tenth is 2/20, each
/// step adds 1/20. Whole numbers keep the round-robin schedule exact, and a bounded number of steps bounds
/// how often the policies rebuild their destination snapshots during a ramp.
/// </remarks>
public static class SlowStart
{
    public const string MetadataKey = "SlowStart";

    /// <summary>Weights are multiplied by this, so that a ramping destination's fraction stays a whole number.</summary>
    public const int Scale = 20;

    /// <summary>From 2/20 to 20/20.</summary>
    public const int Steps = Scale - 2;

    /// <summary>The longest ramp a destination or cluster may configure.</summary>
    public static readonly TimeSpan Longest = TimeSpan.FromHours(1);

    /// <summary>The ramp duration of a destination: its own metadata, else its cluster's, else none.</summary>
    public static TimeSpan? DurationOf(DestinationState destination, ClusterModel? cluster) =>
        Parse(destination.Model.Config.Metadata) ?? Parse(cluster?.Config.Metadata);

    public static TimeSpan? Parse(IReadOnlyDictionary<string, string>? metadata) =>
        metadata is not null && metadata.TryGetValue(MetadataKey, out var raw) && TryParse(raw, out var value, out _) ? value : null;

    public static bool TryParse(string? raw, out TimeSpan value, out string? error)
    {
        error = null;
        if (!TimeSpan.TryParse(raw, CultureInfo.InvariantCulture, out value) || value <= TimeSpan.Zero || value > Longest)
        {
            error = $"'{raw}' is not a time span above 0 and at most 01:00:00, such as 00:00:30";
            return false;
        }

        return true;
    }

    /// <summary>
    /// The ramp's step (0 to <see cref="Steps"/>; <see cref="Steps"/> means done) after <paramref name="elapsed"/>
    /// of <paramref name="duration"/>, and how long until the next step.
    /// </summary>
    public static (int Step, TimeSpan UntilNext) StepAt(TimeSpan elapsed, TimeSpan duration)
    {
        if (elapsed >= duration)
        {
            return (Steps, Timeout.InfiniteTimeSpan);
        }

        var ticks = Math.Max(0, elapsed.Ticks);
        var step = (int)(ticks * Steps / duration.Ticks);
        var next = TimeSpan.FromTicks(((step + 1) * duration.Ticks + Steps - 1) / Steps);
        return (step, next - TimeSpan.FromTicks(ticks));
    }

    /// <summary>The weight, in twentieths, of a destination of weight <paramref name="weight"/> at ramp step <paramref name="step"/>.</summary>
    public static int ScaledWeight(int weight, int step) => weight * (2 + step);
}
