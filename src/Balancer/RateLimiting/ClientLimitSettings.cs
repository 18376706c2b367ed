using System.Globalization;

namespace Balancer.RateLimiting;

/// <summary>
/// The limits that apply to a request: the <c>Balancer:RateLimit</c> values or a route's own. Part of each
/// client's partition key, so a change of values starts fresh buckets and the old ones expire when idle.
/// </summary>
internal sealed record ClientLimitSettings(string Scope, double RequestsPerSecond, int Burst, int MaxConcurrent)
{
    public static readonly ClientLimitSettings Off = new("", 0, 0, 0);

    public bool LimitsRate => RequestsPerSecond > 0;

    public bool LimitsConcurrency => MaxConcurrent > 0;

    public bool IsOff => !LimitsRate && !LimitsConcurrency;

    public static ClientLimitSettings From(RateLimitOptions options) =>
        Create("", options.RequestsPerSecond, options.Burst, options.MaxConcurrentPerClient);

    /// <summary>
    /// A route's values over the defaults, or null when its metadata says nothing about limits. Values are
    /// checked by the config validation; one that does not parse here keeps the default.
    /// </summary>
    public static ClientLimitSettings? ForRoute(string routeId, IReadOnlyDictionary<string, string>? metadata, ClientLimitSettings defaults)
    {
        if (metadata is null)
        {
            return null;
        }

        var any = false;
        var perSecond = defaults.RequestsPerSecond;
        var burst = defaults.Burst;
        var concurrent = defaults.MaxConcurrent;
        if (metadata.TryGetValue(RateLimitOptions.RouteMetadataPrefix + nameof(RateLimitOptions.RequestsPerSecond), out var text)
            && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var r))
        {
            perSecond = r;
            // A route's own rate brings its own default burst, unless it names one.
            burst = 0;
            any = true;
        }

        if (metadata.TryGetValue(RateLimitOptions.RouteMetadataPrefix + nameof(RateLimitOptions.Burst), out text)
            && int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var b))
        {
            burst = b;
            any = true;
        }

        if (metadata.TryGetValue(RateLimitOptions.RouteMetadataPrefix + nameof(RateLimitOptions.MaxConcurrentPerClient), out text)
            && int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var c))
        {
            concurrent = c;
            any = true;
        }

        return any ? Create("route:" + routeId, perSecond, burst, concurrent) : null;
    }

    private static ClientLimitSettings Create(string scope, double perSecond, int burst, int concurrent)
    {
        if (perSecond <= 0)
        {
            return new(scope, 0, 0, Math.Max(0, concurrent));
        }

        return new(scope, perSecond, burst > 0 ? burst : (int)Math.Ceiling(perSecond), Math.Max(0, concurrent));
    }
}
