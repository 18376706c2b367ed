using Prometheus;

namespace Balancer.Telemetry;

/// <summary>
/// <c>GET /metrics</c> on the management listener: the Prometheus text format, or OpenMetrics when the scraper asks
/// for it (Prometheus does), written by <see cref="BalancerMetricsRegistry.ExportAsync"/>.
/// </summary>
internal static class MetricsEndpoint
{
    public const string Path = "/metrics";

    public static async Task WriteAsync(HttpContext context, BalancerMetricsRegistry metrics)
    {
        var openMetrics = context.Request.Headers.Accept.Any(a => a?.Contains("application/openmetrics-text", StringComparison.OrdinalIgnoreCase) == true);
        var response = context.Response;
        try
        {
            response.ContentType = openMetrics
                ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                : "text/plain; version=0.0.4; charset=utf-8";
            // prometheus-net runs the collection callbacks, where a scrape fails, before it writes the first byte.
            await metrics.ExportAsync(response.Body, openMetrics ? ExpositionFormat.OpenMetricsText : ExpositionFormat.PrometheusText, context.RequestAborted);
        }
        catch (ScrapeFailedException e)
        {
            response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            response.ContentType = "text/plain; charset=utf-8";
            await response.WriteAsync($"Scrape failed: {e.Message}\n", context.RequestAborted);
        }
    }
}
