using Bench.Stats;

namespace Balancer.Tests.Benchmarks;

[Trait("Category", "Unit")]
public sealed class LatencyStatsTests
{
    [Fact]
    public void Jitter_IsMeanAbsoluteDifferenceOfConsecutiveLatencies()
    {
        // |3-1| + |2-3| + |6-2| = 7 over 3 differences.
        Assert.Equal(7.0 / 3, LatencyStats.Jitter([1, 3, 2, 6]), 12);
    }

    [Fact]
    public void Jitter_DependsOnSendOrder_NotOnlyOnTheValues()
    {
        Assert.Equal(4.0 / 3, LatencyStats.Jitter([1, 1, 5, 5]), 12);
        Assert.Equal(4, LatencyStats.Jitter([1, 5, 1, 5]));
    }

    [Fact]
    public void Jitter_FewerThanTwoSamples_IsZero()
    {
        Assert.Equal(0, LatencyStats.Jitter([]));
        Assert.Equal(0, LatencyStats.Jitter([42]));
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(50, 5.5)]
    [InlineData(100, 10)]
    [InlineData(90, 9.1)]
    public void Percentile_OneToTen_InterpolatesBetweenClosestRanks(double percent, double expected)
    {
        double[] sorted = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        Assert.Equal(expected, LatencyStats.Percentile(sorted, percent), 12);
    }

    [Fact]
    public void Percentile_OneToHundred_P99Is99Point01()
    {
        var sorted = Enumerable.Range(1, 100).Select(i => (double)i).ToArray();
        Assert.Equal(99.01, LatencyStats.Percentile(sorted, 99), 12);
        Assert.Equal(95.05, LatencyStats.Percentile(sorted, 95), 12);
    }

    [Fact]
    public void Percentile_NoValuesOrOutOfRange_Throws()
    {
        Assert.Throws<ArgumentException>(() => LatencyStats.Percentile([], 50));
        Assert.Throws<ArgumentOutOfRangeException>(() => LatencyStats.Percentile([1, 2], 101));
        Assert.Throws<ArgumentOutOfRangeException>(() => LatencyStats.Percentile([1, 2], -1));
    }

    [Fact]
    public void Median_OfUnsortedValues_IsTheMiddleOne()
    {
        Assert.Equal(3, LatencyStats.Median([5, 1, 3]));
        Assert.Equal(2.5, LatencyStats.Median([4, 1, 3, 2]));
    }

    [Fact]
    public void Summarize_GivesEveryFigureFromTheSameSamples()
    {
        var summary = LatencyStats.Summarize([4, 1, 3, 2, 10]);

        Assert.Equal(new LatencySummary(Count: 5, Min: 1, Mean: 4, P50: 3, P95: 8.8, P99: 9.76, Max: 10, Jitter: 3.5), summary with { P95 = Math.Round(summary.P95, 10), P99 = Math.Round(summary.P99, 10) });
    }
}
