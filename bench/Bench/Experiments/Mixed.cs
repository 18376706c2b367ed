using Bench.Load;
using Bench.Processes;
using Bench.Reporting;

namespace Bench.Experiments;

/// <summary>
/// The load-test paper's run: 500 concurrent users on a mixed workload (list read, join-like read,
/// multipart upload) through the balancer, with the balancer's CPU % and RSS sampled every second
/// (the paper used docker stats).
/// </summary>
internal static class Mixed
{
    public static async Task RunAsync(Lab lab, Report report)
    {
        var options = lab.Options;
        var plan = options.Smoke ? MixedPlan.Smoke(options.MixedRunDuration) : MixedPlan.Paper(options.MixedRunDuration);
        var balancer = await lab.StartBalancerAsync("mixed", "RoundRobin");
        MixedResult result;
        IReadOnlyList<ResourceSample> samples;
        try
        {
            await using var sampler = new ResourceSampler(balancer.Pid, TimeSpan.FromSeconds(1));
            result = await MixedWorkload.RunAsync(balancer.Url, plan);
            samples = await sampler.StopAsync();
        }
        finally
        {
            lab.Stop(balancer);
        }

        if (samples.Count == 0)
        {
            throw new InvalidOperationException("No CPU/RSS sample was taken; the mixed run must last at least a second.");
        }

        var latency = result.Latency;
        var requests = new Table(["users", "total requests", "failed", "success (%)", "RPS", "min (ms)", "avg (ms)", "p95 (ms)", "max (ms)"])
            .Row($"{plan.Users}", result.Total, result.Failed, result.SuccessPercent, result.RequestsPerSecond, latency.Min, latency.Mean, latency.P95, latency.Max);
        var resources = new Table(["balancer", "avg CPU (%)", "peak CPU (%)", "avg RSS (MB)", "peak RSS (MB)", "samples"])
            .Row("RoundRobin", samples.Average(s => s.CpuPercent), samples.Max(s => s.CpuPercent),
                samples.Average(s => s.RssBytes) / 1024 / 1024, samples.Max(s => s.RssBytes) / 1024.0 / 1024, samples.Count);
        var operations = new Table(["operation", "requests"]);
        foreach (var (operation, count) in result.ByOperation)
        {
            operations.Row(operation, count);
        }

        var xs = samples.Select(s => s.AtSeconds).ToArray();
        report.Add($"mixed: {plan.Users} concurrent users")
            .Text($"{plan.Users} users spawned at {plan.SpawnPerSecond}/s, each with its own keep-alive connection, for " +
                  $"{plan.Duration.TotalSeconds:0.#} s: 60% `GET /api/products?limit=20`, 30% `GET /api/report?top=10` (join-like), " +
                  $"10% `POST /api/upload` (multipart, {plan.UploadBytes / 1024} KB), then a think time of " +
                  $"{plan.ThinkMin.TotalSeconds:0.#}-{plan.ThinkMax.TotalSeconds:0.#} s (Locust's `between`). Balancer: RoundRobin, all features. " +
                  "CPU % is of one core (as docker stats shows it), from /proc/PID/stat every second; RSS is VmRSS.")
            .Table(requests)
            .Table(resources)
            .Table(operations)
            .Chart("mixed-cpu.svg", "balancer CPU % over the mixed run",
                SvgChart.Lines("Balancer CPU during the mixed run", "CPU % of one core", xs, "seconds", [new Series("CPU %", [.. samples.Select(s => s.CpuPercent)])]))
            .Chart("mixed-rss.svg", "balancer RSS over the mixed run",
                SvgChart.Lines("Balancer memory during the mixed run", "RSS (MB)", xs, "seconds", [new Series("RSS MB", [.. samples.Select(s => s.RssBytes / 1024.0 / 1024)])]));
        report.Targets.Add(new TargetCheck("mixed", $"0 failed requests at {plan.Users} users; p95 reported",
            $"{result.Failed} failed of {result.Total}; p95 {Format.Number(latency.P95)} ms", result.Failed == 0));
    }
}
