using Balancer.Telemetry;
using Microsoft.Extensions.Time.Testing;

namespace Balancer.Tests.Telemetry;

[Trait("Category", "Unit")]
public sealed class TraceRateLimiterTests
{
    [Fact]
    public void HoldsOneSecondOfTraces_ThenRefillsAtTheRate_NeverAboveASecondsWorth()
    {
        var time = new FakeTimeProvider();
        var limiter = new TraceRateLimiter(time);
        limiter.SetLimit(1000);

        Assert.Equal(1000, Acquired(limiter, 5000));

        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, Acquired(limiter, 10));
        time.Advance(TimeSpan.FromMilliseconds(250));
        Assert.Equal(250, Acquired(limiter, 1000));

        // A quiet minute fills the bucket, not beyond one second of traces.
        time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(1000, Acquired(limiter, 5000));
    }

    [Fact]
    public void BelowOneASecond_TheBucketHoldsOneTrace()
    {
        var time = new FakeTimeProvider();
        var limiter = new TraceRateLimiter(time);
        limiter.SetLimit(0.5);

        Assert.Equal(1, Acquired(limiter, 10));
        time.Advance(TimeSpan.FromSeconds(1.9));
        Assert.Equal(0, Acquired(limiter, 10));
        time.Advance(TimeSpan.FromSeconds(0.1));
        Assert.Equal(1, Acquired(limiter, 10));
    }

    [Fact]
    public void ZeroTakesTheCapAway_AndANewLimitAppliesAtOnce()
    {
        var time = new FakeTimeProvider();
        var limiter = new TraceRateLimiter(time);
        Assert.Equal(10_000, Acquired(limiter, 10_000));

        limiter.SetLimit(10);
        Assert.Equal(10, Acquired(limiter, 100));

        limiter.SetLimit(0);
        Assert.Equal(100, Acquired(limiter, 100));
    }

    private static int Acquired(TraceRateLimiter limiter, int attempts)
    {
        var acquired = 0;
        for (var i = 0; i < attempts; i++)
        {
            if (limiter.TryAcquire())
            {
                acquired++;
            }
        }

        return acquired;
    }
}
