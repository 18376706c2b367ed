using Balancer.Telemetry;

namespace Balancer.Tests.Telemetry;

[Trait("Category", "Unit")]
public sealed class RollingWindowTests
{
    [Fact]
    public void RequestsPerSecond_CountsOnlyTheLastTenWholeSeconds()
    {
        var window = new RollingWindow();
        for (long second = 100; second < 120; second++)
        {
            for (var i = 0; i < second - 100; i++)
            {
                window.Record(second, 0.001);
            }
        }

        // Seconds 110..119 hold 10..19 requests: 145 in 10 s. Second 120 (now) is not yet complete.
        window.Record(120, 0.001);
        Assert.Equal(14.5, window.RequestsPerSecond(120));
    }

    [Fact]
    public void RequestsPerSecondHistory_EachOfTheLast60WholeSeconds_OldestFirst()
    {
        var window = new RollingWindow();
        // Second s holds s - 1000 requests, for 1000..1070; 1070 is in progress.
        for (long second = 1000; second <= 1070; second++)
        {
            for (var i = 0; i < second - 1000; i++)
            {
                window.Record(second, 0.001);
            }
        }

        Assert.Equal(Enumerable.Range(10, 60).Select(n => (long)n), window.RequestsPerSecondHistory(1070));
        // Seconds without requests read 0, and a quiet minute reads all zeros.
        Assert.Equal(Enumerable.Range(40, 31).Select(n => (long)n).Concat(new long[29]), window.RequestsPerSecondHistory(1100));
        Assert.Equal(new long[60], window.RequestsPerSecondHistory(1131));
    }

    [Fact]
    public void Latency_PercentilesOverTheLastMinute_WithinBucketResolution()
    {
        var window = new RollingWindow();
        for (var i = 0; i < 98; i++)
        {
            window.Record(1000 + (i % 30), 0.002);
        }

        window.Record(1010, 0.200);
        window.Record(1011, 0.200);

        var (p50, p99) = window.LatencyMilliseconds(1030)!.Value;
        Assert.InRange(p50, 2 / 1.1, 2 * 1.1);
        Assert.InRange(p99, 200 / 1.1, 200 * 1.1);
    }

    [Fact]
    public void Latency_SlotsOlderThanAMinute_AreForgotten()
    {
        var window = new RollingWindow();
        window.Record(10, 0.5);

        Assert.NotNull(window.LatencyMilliseconds(69));
        Assert.Null(window.LatencyMilliseconds(70));
    }

    [Fact]
    public void Latency_KeptInTenSecondBlocks_TheBlockInProgressAndTheFiveBefore()
    {
        var window = new RollingWindow();
        // Second 19 is in the block 10-19; at 70 the blocks kept are 20-29 .. 70-79.
        window.Record(19, 0.5);
        window.Record(25, 0.001);

        Assert.InRange(window.LatencyMilliseconds(69)!.Value.P99, 500 / 1.1, 500 * 1.1);
        Assert.InRange(window.LatencyMilliseconds(70)!.Value.P99, 1 / 1.1, 1 * 1.1);
        Assert.Null(window.LatencyMilliseconds(80));
        Assert.Null(new RollingWindow().LatencyMilliseconds(0));
    }

    [Fact]
    public void Record_ReusedSlotOfANewMinute_StartsFromZero()
    {
        var window = new RollingWindow();
        window.Record(5, 0.001);
        window.Record(5, 0.001);
        // 61 slots: the minute and the second in progress.
        window.Record(66, 0.001);

        Assert.Equal(0.1, window.RequestsPerSecond(67));
    }
}
