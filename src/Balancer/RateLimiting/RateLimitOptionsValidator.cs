using Balancer.Configuration;

namespace Balancer.RateLimiting;

/// <summary>
/// The <c>Balancer:RateLimit</c> section, and a route's own limits in its metadata (the same keys prefixed
/// <see cref="RateLimitOptions.RouteMetadataPrefix"/>).
/// </summary>
internal sealed class RateLimitOptionsValidator(OptionsSource source) : OptionsValidator<RateLimitOptions>(source)
{
    protected override void Check(RateLimitOptions options, OptionErrors errors)
    {
        errors.Number(
            options.RequestsPerSecond,
            value => double.IsFinite(value) && value >= 0 && value <= 1_000_000,
            "must be a number of requests a second from 0 to 1000000 (0: no rate limit)");
        errors.WholeNumber(options.Burst, 0, 1_000_000);
        errors.WholeNumber(options.MaxConcurrentPerClient, 0, 1_000_000);
    }
}
