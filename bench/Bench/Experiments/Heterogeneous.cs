using Bench.Load;
using Bench.Processes;
using Bench.Reporting;
using Bench.Stats;

namespace Bench.Experiments;

/// <summary>
/// One slow backend: RoundRobin keeps sending it a third of the requests, LeastConnections routes around
/// it because its requests pile up in flight. The p99 shows the difference.
/// </summary>
internal static class Heterogeneous
{
    public const int SlowMs = 300;
    public const int Concurrency = 16;

    public static async Task RunAsync(Lab lab, Report report)
    {
        var options = lab.Options;
        var slow = lab.Backends[^1].Name;
        var policies = new[] { "RoundRobin", "LeastConnections" };
        var targets = new List<Target>();
        var runs = policies.ToDictionary(p => p, _ => new List<LoadResult>());
        try
        {
            foreach (var policy in policies)
            {
                targets.Add(await lab.StartBalancerAsync("heterogeneous-" + policy, policy));
            }

            await lab.SetDelayAsync(slow, SlowMs);
            var plan = new LoadPlan("/", 1_000_000, Concurrency, Duration: options.RunDuration);
            for (var run = 0; run < options.RepeatedRuns; run++)
            {
                // Alternate the policies so drift on a shared machine hits both alike.
                for (var i = 0; i < policies.Length; i++)
                {
                    using var client = new LoadClient(targets[i].Url);
                    runs[policies[i]].Add(await client.RunAsync(plan));
                }
            }
        }
        finally
        {
            await lab.SetDelayAsync(slow, 0);
            targets.ForEach(lab.Stop);
        }

        var table = new Table(["policy", "requests", "RPS", "mean (ms)", "p50 (ms)", "p95 (ms)", "p99 (ms)", $"share to slow {slow} (%)", "failed (%)"]);
        var p99 = new Dictionary<string, double>();
        foreach (var policy in policies)
        {
            var r = runs[policy];
            double Median(Func<LoadResult, double> f) => LatencyStats.Median(r.Select(f));
            p99[policy] = Median(x => x.Latency!.P99);
            table.Row(policy, Median(x => x.Sent), Median(x => x.RequestsPerSecond), Median(x => x.Latency!.Mean), Median(x => x.Latency!.P50),
                Median(x => x.Latency!.P95), p99[policy], Median(x => 100.0 * x.ByBackend.GetValueOrDefault(slow) / Math.Max(1, x.Sent - x.Failed)),
                Median(x => x.FailedPercent));
        }

        report.Add("heterogeneous: one slow backend")
            .Text($"Backend {slow} answers {SlowMs} ms late (`POST /admin/delay?ms={SlowMs}`); {Concurrency} clients in a closed loop for " +
                  $"{options.RunDuration.TotalSeconds:0.#} s per run, {options.RepeatedRuns} runs per policy, policies alternated; medians over runs.")
            .Table(table)
            .Chart("heterogeneous.svg", "latency percentiles per policy with one slow backend",
                SvgChart.Bars($"Latency with {slow} slowed by {SlowMs} ms", "ms", policies,
                [
                    new Series("p50", [.. policies.Select(p => LatencyStats.Median(runs[p].Select(x => x.Latency!.P50)))]),
                    new Series("p95", [.. policies.Select(p => LatencyStats.Median(runs[p].Select(x => x.Latency!.P95)))]),
                    new Series("p99", [.. policies.Select(p => p99[p])]),
                ]));
        report.Targets.Add(new TargetCheck("heterogeneous", "LeastConnections beats RoundRobin on p99 with one slow backend",
            $"{Format.Number(p99["LeastConnections"])} ms vs {Format.Number(p99["RoundRobin"])} ms", p99["LeastConnections"] < p99["RoundRobin"]));
    }
}
