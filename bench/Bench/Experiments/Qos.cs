using Bench.Load;
using Bench.Processes;
using Bench.Reporting;

namespace Bench.Experiments;

/// <summary>
/// The QoS paper's measurements (throughput, delay, jitter, loss) directly to one backend and through the
/// balancer per policy, at a moderate paced load and at saturation, plus p50/p95/p99.
/// </summary>
internal static class Qos
{
    /// <summary>Moderate load: paced, well below what any target here can serve.</summary>
    public const double ModerateRate = 500;
    public const int SaturationConcurrency = 64;
    public const double AddedDelayTargetMs = 0.5;
    private const string NginxTarget = "nginx round robin";

    public static async Task RunAsync(Lab lab, Report report)
    {
        var options = lab.Options;
        var moderate = new LoadPlan("/", options.PaperRequests, Concurrency: 16, RatePerSecond: ModerateRate);
        var saturation = new LoadPlan("/", options.PaperRequests * (options.Smoke ? 2 : 5), Concurrency: SaturationConcurrency);
        var results = new List<(string Target, string Load, IReadOnlyList<LoadResult> Runs)>();

        async Task MeasureAsync(string name, Uri url, int sources)
        {
            using var client = new LoadClient(url, sources);
            await client.RunAsync(new LoadPlan("/", options.Smoke ? 200 : 2000, Concurrency: 8)); // warm-up, not reported
            foreach (var (load, plan) in new[] { ("moderate", moderate), ("saturation", saturation) })
            {
                var runs = new List<LoadResult>();
                for (var run = 0; run < options.PaperRuns; run++)
                {
                    runs.Add(await client.RunAsync(plan));
                }

                results.Add((name, load, runs));
            }
        }

        var warmUps = new List<WarmUp>();
        async Task ThroughAsync(string name, Target proxy, int sources)
        {
            try
            {
                // The same warm-up as the race: a freshly started .NET proxy is still compiling its hot code.
                warmUps.AddRange(await Measured.WarmUpAsync(lab, [proxy]));
                await MeasureAsync(name, proxy.Url, sources);
            }
            finally
            {
                lab.Stop(proxy);
            }
        }

        await MeasureAsync("direct to A", lab.Backends[0].Url, 0);
        foreach (var policy in Distribution.Policies)
        {
            await ThroughAsync("balancer " + policy, await lab.StartBalancerAsync("qos-" + policy, policy), policy == "IpHash" ? Distribution.IpHashClients : 0);
        }

        // The paper's own balancer, on the same CPUs: what a proxy hop costs on this machine, whoever makes it.
        await ThroughAsync(NginxTarget, await lab.StartNginxAsync("qos-nginx"), 0);

        var section = report.Add("qos: throughput, delay, jitter, loss")
            .Text($"{options.PaperRuns} runs per target and load, `GET /` with the harness's client; every figure is the mean over the runs " +
                  "(the paper's 'rata-rata'). Throughput counts response bodies only. Delay is the mean latency (request sent to body read), " +
                  "jitter the mean absolute difference of consecutive latencies in send order, loss the share of requests that failed " +
                  $"or were not 2xx. Moderate: {moderate.Requests} requests paced at {ModerateRate} req/s (up to 16 in flight). " +
                  $"Saturation: {saturation.Requests} requests, {SaturationConcurrency} in flight, as fast as answered. " +
                  "NGINX (round robin, upstream keepalive, the race's config) is measured the same way as a control: the client and the backends " +
                  "share the load generator's CPU and the proxy is on its own, so every proxied request crosses between CPUs four times, " +
                  "which the direct path never does. " + WarmUp.Describe(warmUps, options));
        foreach (var load in new[] { "moderate", "saturation" })
        {
            var table = new Table(["target", "throughput (Mbps)", "RPS", "delay (ms)", "jitter (ms)", "loss (%)", "p50 (ms)", "p95 (ms)", "p99 (ms)"]);
            foreach (var (target, l, runs) in results.Where(r => r.Load == load))
            {
                double Mean(Func<LoadResult, double> f) => runs.Average(f);
                table.Row(target, Mean(r => r.Mbps), Mean(r => r.RequestsPerSecond), Mean(r => r.Latency!.Mean), Mean(r => r.Latency!.Jitter),
                    Mean(r => r.FailedPercent), Mean(r => r.Latency!.P50), Mean(r => r.Latency!.P95), Mean(r => r.Latency!.P99));
            }

            section.Text($"**{load}**").Table(table);
        }

        var targets = results.Select(r => r.Target).Distinct().ToArray();
        section.Chart("qos-latency.svg", "mean and p99 latency per target at moderate load",
            SvgChart.Bars("Latency at moderate load", "ms", targets,
            [
                new Series("mean", [.. targets.Select(t => MeanOf(results, t, "moderate", r => r.Latency!.Mean))]),
                new Series("jitter", [.. targets.Select(t => MeanOf(results, t, "moderate", r => r.Latency!.Jitter))]),
                new Series("p99", [.. targets.Select(t => MeanOf(results, t, "moderate", r => r.Latency!.P99))]),
            ]));
        section.Chart("qos-saturation.svg", "requests per second per target at saturation",
            SvgChart.Bars($"RPS at saturation ({SaturationConcurrency} in flight)", "requests/s", targets,
                [new Series("RPS", [.. targets.Select(t => MeanOf(results, t, "saturation", r => r.RequestsPerSecond))])]));

        var direct = MeanOf(results, "direct to A", "moderate", r => r.Latency!.Mean);
        var added = MeanOf(results, "balancer RoundRobin", "moderate", r => r.Latency!.Mean) - direct;
        var nginxAdded = MeanOf(results, NginxTarget, "moderate", r => r.Latency!.Mean) - direct;
        report.Targets.Add(new TargetCheck("qos", $"added delay through the balancer at moderate load < {AddedDelayTargetMs} ms",
            $"{Format.Number(added)} ms (RoundRobin mean minus direct mean; NGINX adds {Format.Number(nginxAdded)} ms)", added < AddedDelayTargetMs));
    }

    private static double MeanOf(List<(string Target, string Load, IReadOnlyList<LoadResult> Runs)> results, string target, string load, Func<LoadResult, double> f) =>
        results.Single(r => r.Target == target && r.Load == load).Runs.Average(f);
}
