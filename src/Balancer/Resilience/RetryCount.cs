namespace Balancer.Resilience;

/// <summary>How many times the request was sent again after a failed attempt; set only once it was.</summary>
internal sealed class RetryCount
{
    public int Value { get; set; }

    public static void Increment(HttpContext context)
    {
        var count = context.Features.Get<RetryCount>();
        if (count is null)
        {
            count = new RetryCount();
            context.Features.Set(count);
        }

        count.Value++;
    }
}
