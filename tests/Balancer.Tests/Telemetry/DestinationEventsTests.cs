using Balancer.Telemetry;
using Balancer.Tests.Deployment;
using Prometheus;

namespace Balancer.Tests.Telemetry;

[Trait("Category", "Unit")]
public sealed class DestinationEventsTests
{
    [Fact]
    public void RetryReasons_CreatedAtStartUp_AreExactlyTheReasonsARetryIsCountedWith()
    {
        // A local socket shortage is answered with a 503 and never retried, so it has no retry series.
        var counted = Enum.GetValues<FailureKind>().Where(k => k is not (FailureKind.None or FailureKind.Local)).Select(TransportFailure.Label);

        Assert.Equal(counted.Order(StringComparer.Ordinal), DestinationEvents.RetryReasons.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task EventCounts_EveryDestinationAtZeroFromAdded_CountsWhatHappened_GoneWhenRemoved_PassPromtool()
    {
        var metrics = new BalancerMetricsRegistry();
        // A destination id may hold anything a JSON key can: quotes and backslashes are escaped in the label.
        const string odd = "d\"1\\x";
        const string oddAsWritten = "d\\\"1\\\\x";
        metrics.Events.Add("backends", "A");
        metrics.Events.Add("backends", odd);
        metrics.Events.Add("backends", "gone");
        metrics.Events.Retry("backends", "A", "refused");
        metrics.Events.Retry("backends", "A", "refused");
        metrics.Events.Retry("backends", odd, "marked_down");
        metrics.Events.HealthTransition("backends", "A", "down");
        metrics.Events.Remove("backends", "gone");

        var text = await ExportAsync(metrics, ExpositionFormat.PrometheusText);
        var samples = PrometheusText.Parse(text);
        Assert.Equal(2 * 9, samples.Count(s => s.Name is "balancer_retries_total" or "balancer_destination_health_transitions_total"));
        Assert.Equal(2, samples.Value("balancer_retries_total", ("destination", "A"), ("reason", "refused")));
        Assert.Equal(0, samples.Value("balancer_retries_total", ("destination", "A"), ("reason", "timeout")));
        Assert.Equal(1, samples.Value("balancer_retries_total", ("destination", oddAsWritten), ("reason", "marked_down")));
        Assert.Equal(1, samples.Value("balancer_destination_health_transitions_total", ("destination", "A"), ("to", "down")));
        Assert.Equal(0, samples.Value("balancer_destination_health_transitions_total", ("destination", oddAsWritten), ("to", "up")));
        Assert.DoesNotContain(samples, s => s.Labels.GetValueOrDefault("destination") == "gone");
        var check = Repo.Run("promtool", ["check", "metrics"], stdin: text);
        Assert.True(check.ExitCode == 0 && check.Stdout.Trim().Length == 0 && check.Stderr.Trim().Length == 0, check.ToString());

        // OpenMetrics: the families named without _total, float values, and one terminator at the very end.
        var open = await ExportAsync(metrics, ExpositionFormat.OpenMetricsText);
        Assert.Contains("# TYPE balancer_retries counter\n", open, StringComparison.Ordinal);
        Assert.Contains("balancer_retries_total{cluster=\"backends\",destination=\"A\",reason=\"refused\"} 2.0\n", open, StringComparison.Ordinal);
        Assert.Contains("# TYPE balancer_destination_health_transitions counter\n", open, StringComparison.Ordinal);
        Assert.EndsWith("\n# EOF\n", open, StringComparison.Ordinal);
        Assert.Equal(open.IndexOf("# EOF", StringComparison.Ordinal), open.LastIndexOf("# EOF", StringComparison.Ordinal));
    }

    private static async Task<string> ExportAsync(BalancerMetricsRegistry metrics, ExpositionFormat format)
    {
        using var stream = new MemoryStream();
        await metrics.ExportAsync(stream, format);
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }
}
