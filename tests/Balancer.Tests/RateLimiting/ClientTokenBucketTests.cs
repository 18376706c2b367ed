using System.Threading.RateLimiting;
using Balancer.RateLimiting;
using Microsoft.Extensions.Time.Testing;

namespace Balancer.Tests.RateLimiting;

public sealed class ClientTokenBucketTests
{
    [Fact]
    public void TenPerSecondBurstFive_FiveAtOnce_ThenOneTokenEvery100ms_NotTenAtTheSecond()
    {
        var time = new FakeTimeProvider();
        using var bucket = new ClientTokenBucket(10, 5, time);

        Assert.Equal(5, Take(bucket, 100));
        using (var refused = bucket.AttemptAcquire())
        {
            Assert.False(refused.IsAcquired);
            Assert.True(refused.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter));
            Assert.Equal(TimeSpan.FromMilliseconds(100), retryAfter);
        }

        time.Advance(TimeSpan.FromMilliseconds(50));
        Assert.Equal(0, Take(bucket, 10));
        time.Advance(TimeSpan.FromMilliseconds(50));
        Assert.Equal(1, Take(bucket, 10));
        for (var i = 0; i < 30; i++)
        {
            time.Advance(TimeSpan.FromMilliseconds(100));
            Assert.Equal(1, Take(bucket, 10));
        }

        // A quiet second refills the bucket, which holds at most the burst.
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(5, Take(bucket, 100));
    }

    [Fact]
    public void IdleDuration_IsNullWhileRefilling_AndCountsFromWhenTheBucketWasFullAgain()
    {
        var time = new FakeTimeProvider();
        using var bucket = new ClientTokenBucket(10, 5, time);
        Assert.Equal(TimeSpan.Zero, bucket.IdleDuration);

        Assert.Equal(5, Take(bucket, 5));
        Assert.Null(bucket.IdleDuration);
        time.Advance(TimeSpan.FromMilliseconds(400));
        Assert.Null(bucket.IdleDuration);
        time.Advance(TimeSpan.FromMilliseconds(100));
        Assert.Equal(TimeSpan.Zero, bucket.IdleDuration);
        time.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal(TimeSpan.FromSeconds(3), bucket.IdleDuration);
    }

    [Fact]
    public void FractionalRate_OneTokenEveryFourSeconds()
    {
        var time = new FakeTimeProvider();
        using var bucket = new ClientTokenBucket(0.25, 1, time);

        Assert.Equal(1, Take(bucket, 5));
        time.Advance(TimeSpan.FromSeconds(3.5));
        using (var refused = bucket.AttemptAcquire())
        {
            Assert.False(refused.IsAcquired);
            refused.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter);
            Assert.Equal(TimeSpan.FromSeconds(0.5), retryAfter);
        }

        time.Advance(TimeSpan.FromSeconds(0.5));
        Assert.Equal(1, Take(bucket, 5));
    }

    private static int Take(RateLimiter bucket, int attempts)
    {
        var acquired = 0;
        for (var i = 0; i < attempts; i++)
        {
            using var lease = bucket.AttemptAcquire();
            acquired += lease.IsAcquired ? 1 : 0;
        }

        return acquired;
    }
}
