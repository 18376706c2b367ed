namespace Bench.Stats;

/// <summary>The numbers the papers report, computed from per-request latencies in milliseconds.</summary>
internal static class LatencyStats
{
    /// <summary>
    /// Jitter as the QoS paper defines it: the mean absolute difference of consecutive latencies, in the
    /// order the requests were sent. Fewer than two samples have no jitter: 0.
    /// </summary>
    public static double Jitter(ReadOnlySpan<double> latencies)
    {
        if (latencies.Length < 2)
        {
            return 0;
        }

        var sum = 0.0;
        for (var i = 1; i < latencies.Length; i++)
        {
            sum += Math.Abs(latencies[i] - latencies[i - 1]);
        }

        return sum / (latencies.Length - 1);
    }

    /// <summary>
    /// The <paramref name="percent"/>th percentile of already sorted values by linear interpolation between
    /// closest ranks (the method numpy and Excel's PERCENTILE.INC use), so p50 of an even count is the mean
    /// of the middle two.
    /// </summary>
    public static double Percentile(ReadOnlySpan<double> sorted, double percent)
    {
        if (sorted.IsEmpty)
        {
            throw new ArgumentException("No values.", nameof(sorted));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(percent, 0);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(percent, 100);
        var rank = percent / 100 * (sorted.Length - 1);
        var lower = (int)Math.Floor(rank);
        var upper = (int)Math.Ceiling(rank);
        return sorted[lower] + (sorted[upper] - sorted[lower]) * (rank - lower);
    }

    /// <summary>The median of unsorted values (the harness reports medians of repeated runs).</summary>
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.ToArray();
        Array.Sort(sorted);
        return Percentile(sorted, 50);
    }

    /// <summary>Summarises latencies given in the order they were sent.</summary>
    public static LatencySummary Summarize(ReadOnlySpan<double> inSendOrder)
    {
        if (inSendOrder.IsEmpty)
        {
            throw new ArgumentException("No latencies to summarise.", nameof(inSendOrder));
        }

        var sorted = inSendOrder.ToArray();
        Array.Sort(sorted);
        var sum = 0.0;
        foreach (var value in sorted)
        {
            sum += value;
        }

        return new LatencySummary(
            Count: sorted.Length,
            Min: sorted[0],
            Mean: sum / sorted.Length,
            P50: Percentile(sorted, 50),
            P95: Percentile(sorted, 95),
            P99: Percentile(sorted, 99),
            Max: sorted[^1],
            Jitter: Jitter(inSendOrder));
    }
}

/// <summary>Latency figures in milliseconds.</summary>
internal sealed record LatencySummary(int Count, double Min, double Mean, double P50, double P95, double P99, double Max, double Jitter);
