using Bench.Load;
using Bench.Processes;
using Bench.Reporting;

namespace Bench.Experiments;

/// <summary>
/// The REST API paper's test (vegeta at 25, 150 and 500 requests per second; failures appeared at 500),
/// continued upward through the balancer until requests fail or the rate can no longer be kept.
/// </summary>
internal static class Rates
{
    public static readonly int[] Steps = [25, 150, 500, 1000, 2000, 4000, 8000];

    /// <summary>Requests in flight at most, so sends stay on schedule (open loop) until the target really falls behind.</summary>
    public const int MaxInFlight = 1000;

    public static async Task RunAsync(Lab lab, Report report)
    {
        var options = lab.Options;
        var duration = options.RunDuration;
        var balancer = await lab.StartBalancerAsync("rates", "RoundRobin");
        var results = new List<(int Rate, LoadResult Result)>();
        try
        {
            using var client = new LoadClient(balancer.Url);
            await client.RunAsync(new LoadPlan("/api/products?limit=20", options.Smoke ? 200 : 2000, Concurrency: 8)); // warm-up, not reported
            foreach (var rate in Steps)
            {
                var plan = new LoadPlan("/api/products?limit=20", (int)(rate * duration.TotalSeconds), MaxInFlight, duration + TimeSpan.FromSeconds(1), rate);
                results.Add((rate, await client.RunAsync(plan)));
            }
        }
        finally
        {
            lab.Stop(balancer);
        }

        var table = new Table(["target rate (req/s)", "sent", "achieved (req/s)", "success (%)", "mean (ms)", "p95 (ms)", "p99 (ms)", "max (ms)"]);
        foreach (var (rate, r) in results)
        {
            table.Row(rate.ToString(System.Globalization.CultureInfo.InvariantCulture), r.Sent, r.RequestsPerSecond, 100 - r.FailedPercent, r.Latency!.Mean, r.Latency.P95, r.Latency.P99, r.Latency.Max);
        }

        var categories = Steps.Select(s => s.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        report.Add("rates: rising request rates")
            .Text($"`GET /api/products?limit=20` through the balancer (RoundRobin) at fixed rates for {duration.TotalSeconds:0.#} s each, " +
                  $"open loop (requests leave on schedule, up to {MaxInFlight} in flight), as the paper did with vegeta at 25, 150 and 500 req/s; " +
                  "the higher steps show where requests start to fail, latency climbs, or the achieved rate falls below the target.")
            .Table(table)
            .Chart("rates.svg", "latency per target rate", SvgChart.Bars("Latency by request rate", "ms", categories,
            [
                new Series("mean", [.. results.Select(r => r.Result.Latency!.Mean)]),
                new Series("p99", [.. results.Select(r => r.Result.Latency!.P99)]),
            ]));
    }
}
