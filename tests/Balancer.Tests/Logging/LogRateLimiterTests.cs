using Balancer.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Balancer.Tests.Logging;

public sealed class LogRateLimiterTests
{
    private readonly FakeTimeProvider _time = new();

    [Fact]
    public void WithinAWindow_LetsThroughTheLimit_ThenCountsTheRest()
    {
        var limiter = new LogRateLimiter<string>(_time, limit: 3, TimeSpan.FromSeconds(10));

        var allowed = Enumerable.Range(0, 10).Count(_ => limiter.TryAcquire("bad-body", out long _));

        Assert.Equal(3, allowed);
    }

    [Fact]
    public void NextWindow_FirstLineCarriesTheCountSuppressed()
    {
        var limiter = new LogRateLimiter<string>(_time, limit: 3, TimeSpan.FromSeconds(10));
        for (var i = 0; i < 10; i++)
        {
            limiter.TryAcquire("bad-body", out _);
        }

        _time.Advance(TimeSpan.FromSeconds(9.9));
        Assert.False(limiter.TryAcquire("bad-body", out _));
        _time.Advance(TimeSpan.FromSeconds(0.1));

        Assert.True(limiter.TryAcquire("bad-body", out var suppressed));
        Assert.Equal(8, suppressed);
        Assert.True(limiter.TryAcquire("bad-body", out suppressed));
        Assert.Equal(0, suppressed);
    }

    [Fact]
    public void Keys_HaveBudgetsOfTheirOwn()
    {
        var limiter = new LogRateLimiter<string>(_time, limit: 1, TimeSpan.FromMinutes(1));

        Assert.True(limiter.TryAcquire("client", out _));
        Assert.False(limiter.TryAcquire("client", out _));

        Assert.True(limiter.TryAcquire("destination", out var suppressed));
        Assert.Equal(0, suppressed);
    }
}
