using System.Globalization;
using System.Net;
using System.Threading.RateLimiting;
using Balancer.Hosting;
using Balancer.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace Balancer.RateLimiting;

/// <summary>
/// Answers <c>429</c> with <c>Retry-After</c> when the client is over its request rate or has too many
/// requests in flight; first in the proxy pipeline, so a refused request reaches no backend and costs no
/// retry or health bookkeeping. With no limits configured it costs a field read and a lookup of the route.
/// </summary>
internal sealed class RateLimitMiddleware(RequestDelegate next, ClientLimits limits, ClientIpResolver clientIp)
{
    private static readonly byte[] RateBody = "429 Too Many Requests: this client is over its request rate; see Retry-After.\n"u8.ToArray();
    private static readonly byte[] ConcurrencyBody = "429 Too Many Requests: this client has too many requests in flight.\n"u8.ToArray();

    public Task InvokeAsync(HttpContext context)
    {
        var feature = context.GetReverseProxyFeature();
        var settings = limits.SettingsFor(feature.Route);
        if (settings.IsOff)
        {
            return next(context);
        }

        var client = clientIp.Resolve(context) ?? IPAddress.None;
        RateLimitLease? inFlight = null;
        if (settings.LimitsConcurrency)
        {
            inFlight = limits.AcquireConcurrency(settings, client);
            if (!inFlight.IsAcquired)
            {
                inFlight.Dispose();
                return RejectAsync(context, feature, rate: false, TimeSpan.FromSeconds(1));
            }
        }

        if (settings.LimitsRate)
        {
            using var token = limits.AcquireRate(settings, client);
            if (!token.IsAcquired)
            {
                inFlight?.Dispose();
                token.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter);
                return RejectAsync(context, feature, rate: true, retryAfter);
            }
        }

        return inFlight is null ? next(context) : ForwardHoldingAsync(context, inFlight);
    }

    private async Task ForwardHoldingAsync(HttpContext context, RateLimitLease inFlight)
    {
        try
        {
            await next(context);
        }
        finally
        {
            inFlight.Dispose();
        }
    }

    private Task RejectAsync(HttpContext context, IReverseProxyFeature feature, bool rate, TimeSpan retryAfter)
    {
        limits.CountLimited(feature.Cluster.Config.ClusterId, rate);
        // Whole seconds, rounded up (RFC 9110): a client that waits that long finds a token.
        var seconds = Math.Max(1, (long)Math.Ceiling(retryAfter.TotalSeconds));
        context.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        return PlainTextAnswer.WriteAsync(context, StatusCodes.Status429TooManyRequests, rate ? RateBody : ConcurrencyBody);
    }
}
