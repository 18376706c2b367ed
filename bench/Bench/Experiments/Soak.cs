using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Bench.Load;
using Bench.Processes;
using Bench.Reporting;

namespace Bench.Experiments;

/// <summary>
/// A long run of the papers' mixed workload while the operator's chores happen: the config file rewritten
/// every 30 s (the policy alternating RoundRobin / LeastConnections) and a backend restarted every 2
/// minutes (A, B, C in turn). Failed requests are counted per method: a GET must never fail, since the
/// balancer may retry it elsewhere. The balancer's RSS is sampled every second, to see whether it grows
/// once warmed up.
/// </summary>
internal static class Soak
{
    private static readonly TimeSpan ApplyTimeout = TimeSpan.FromSeconds(10);

    public static async Task RunAsync(Lab lab, Report report)
    {
        var options = lab.Options;
        var plan = options.Smoke ? MixedPlan.Smoke(options.SoakRunDuration) : MixedPlan.Paper(options.SoakRunDuration);
        var balancer = await lab.StartRunningBalancerAsync("soak", "RoundRobin");
        MixedResult result;
        IReadOnlyList<ResourceSample> samples;
        Chores chores;
        Dictionary<string, double> reloadCounts;
        try
        {
            await using var sampler = new ResourceSampler(balancer.Target.Pid, TimeSpan.FromSeconds(1));
            using var stop = new CancellationTokenSource();
            var load = MixedWorkload.RunAsync(balancer.Target.Url, plan);
            var choresTask = RunChoresAsync(lab, balancer, options, plan.Duration, stop.Token);
            result = await load;
            await stop.CancelAsync();
            chores = await choresTask;
            samples = await sampler.StopAsync();
            reloadCounts = await balancer.CountersAsync("balancer_config_reloads_total", "result");
        }
        finally
        {
            lab.Stop(balancer.Target);
        }

        var memory = Memory.Of(samples, options.SoakWarmUp, window: options.Smoke ? 2 : 10);
        var getFailed = result.FailedByOperation.Where(o => o.Key.StartsWith("GET ", StringComparison.Ordinal)).Sum(o => o.Value);
        var postFailed = result.FailedByOperation.Where(o => o.Key.StartsWith("POST ", StringComparison.Ordinal)).Sum(o => o.Value);
        var requests = new Table(["users", "total requests", "failed", "GET failed", "POST failed", "RPS", "p95 (ms)", "max (ms)"])
            .Row($"{plan.Users}", result.Total, result.Failed, getFailed, postFailed, result.RequestsPerSecond, result.Latency.P95, result.Latency.Max);
        var operations = new Table(["operation", "requests", "failed"]);
        foreach (var (operation, count) in result.ByOperation)
        {
            operations.Row(operation, count, result.FailedByOperation[operation]);
        }

        var reloadSuccesses = Count(reloadCounts, "success");
        var reloadFailures = Count(reloadCounts, "failure");
        var choreTable = new Table(["chore", "done", "applied / back", "longest wait (s)"])
            .Row("config rewrites", chores.Reloads.Count, chores.Reloads.Count(r => r.Applied), chores.Reloads.Select(r => r.Wait.TotalSeconds).DefaultIfEmpty(0).Max())
            .Row("backend restarts", chores.Restarts.Count, chores.Restarts.Count(r => r.Applied), chores.Restarts.Select(r => r.Wait.TotalSeconds).DefaultIfEmpty(0).Max());
        var resources = new Table(["balancer", "RSS at warm-up (MB)", "RSS at end (MB)", "peak RSS after warm-up (MB)", "growth at end (%)", "peak growth (%)", "avg CPU (%)", "samples"])
            .Row("soak", Mb(memory.WarmUp), Mb(memory.End), Mb(memory.Peak), memory.GrowthPercent, memory.PeakGrowthPercent, samples.Average(s => s.CpuPercent), samples.Count);

        var length = plan.Duration >= TimeSpan.FromMinutes(2) ? $"{plan.Duration.TotalMinutes:0.#} minutes" : $"{plan.Duration.TotalSeconds:0.#} s";
        var section = report.Add($"soak: {length} with reloads and restarts")
            .Text($"The mixed workload ({plan.Users} users, as in `mixed`) through the balancer for {plan.Duration.TotalSeconds:0} s. Meanwhile the " +
                  $"config file is rewritten in place every {options.SoakReloadInterval.TotalSeconds:0.#} s, alternating `LoadBalancingPolicy` between " +
                  $"RoundRobin and LeastConnections (applied = `/status` shows the new policy within {ApplyTimeout.TotalSeconds:0} s), and every " +
                  $"{options.SoakRestartInterval.TotalSeconds:0.#} s a backend (A, B, C in turn) is stopped with SIGTERM and started again on its port " +
                  "(back = `/status` shows it `Up` again; the wait is from the stop). GETs are idempotent: the balancer retries them on another backend, so none may fail. " +
                  $"RSS (VmRSS) is sampled every second; warm-up is the first {options.SoakWarmUp.TotalSeconds:0} s, RSS at warm-up and at the end are medians " +
                  $"of {memory.Window} samples. The balancer counted {reloadSuccesses:0} reloads applied and {reloadFailures:0} rejected (`balancer_config_reloads_total`).")
            .Table(requests)
            .Table(operations)
            .Table(choreTable)
            .Table(resources)
            .Chart("soak-rss.svg", "balancer RSS over the soak",
                SvgChart.Lines("Balancer memory during the soak", "RSS (MB)", [.. samples.Select(s => s.AtSeconds)], "seconds", [new Series("RSS MB", [.. samples.Select(s => s.RssBytes / 1024.0 / 1024)])]));
        if (result.FailureSamples.Count > 0)
        {
            section.Text("First failures: " + string.Join("; ", result.FailureSamples.Select(f => $"`{f.ReplaceLineEndings(" ")}`")));
        }

        report.Targets.Add(new TargetCheck("soak", "0 failed idempotent (GET) requests through config reloads and backend restarts",
            $"{getFailed} GETs failed of {result.ByOperation.Where(o => o.Key.StartsWith("GET ", StringComparison.Ordinal)).Sum(o => o.Value)} ({postFailed} POSTs failed); {chores.Reloads.Count} reloads, {chores.Restarts.Count} restarts",
            getFailed == 0));
        report.Targets.Add(new TargetCheck("soak", "balancer RSS growth after warm-up < 10%",
            $"{Format.Number(memory.GrowthPercent)}% ({Format.Number(Mb(memory.WarmUp))} -> {Format.Number(Mb(memory.End))} MB, peak {Format.Number(Mb(memory.Peak))} MB)",
            memory.GrowthPercent < 10));
    }

    private static double Mb(double bytes) => bytes / 1024 / 1024;

    private static double Count(Dictionary<string, double> counts, string result) => counts.GetValueOrDefault(result, double.NaN);

    /// <summary>Reloads and restarts on their schedules until the load ends.</summary>
    private static async Task<Chores> RunChoresAsync(Lab lab, RunningBalancer balancer, Options options, TimeSpan duration, CancellationToken stop)
    {
        var chores = new Chores();
        var started = Stopwatch.GetTimestamp();
        var nextReload = options.SoakReloadInterval;
        var nextRestart = options.SoakRestartInterval;
        var policies = new[] { "LeastConnections", "RoundRobin" };
        var backends = lab.Backends.Select(b => b.Name).ToArray();
        using var http = new HttpClient { BaseAddress = balancer.Management, Timeout = TimeSpan.FromSeconds(5) };
        try
        {
            while (!stop.IsCancellationRequested)
            {
                var next = nextReload < nextRestart ? nextReload : nextRestart;
                if (next >= duration)
                {
                    // Not at the very end: its effect could not be seen under load any more.
                    break;
                }

                var wait = next - Stopwatch.GetElapsedTime(started);
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, stop);
                }

                var watch = Stopwatch.StartNew();
                if (next == nextReload)
                {
                    var policy = policies[chores.Reloads.Count % policies.Length];
                    // In place, as an editor saves: the balancer must cope with whatever it reads meanwhile.
                    await File.WriteAllTextAsync(balancer.ConfigPath, ProxyConfigs.Balancer(balancer.Port, balancer.ManagementPort, policy, lab.Backends), stop);
                    var applied = await WaitAsync(http, status => (string?)status["clusters"]![0]!["policy"] == policy, stop);
                    chores.Reloads.Add(new Chore(Stopwatch.GetElapsedTime(started), applied, watch.Elapsed));
                    nextReload += options.SoakReloadInterval;
                }
                else
                {
                    var name = backends[chores.Restarts.Count % backends.Length];
                    await lab.RestartBackendAsync(name);
                    var back = await WaitAsync(
                        http,
                        status => status["clusters"]![0]!["destinations"]!.AsArray().Any(d => (string?)d!["id"] == name && (string?)d["health"] == "Up"),
                        stop);
                    chores.Restarts.Add(new Chore(Stopwatch.GetElapsedTime(started), back, watch.Elapsed));
                    nextRestart += options.SoakRestartInterval;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The load ended.
        }

        return chores;
    }

    /// <summary>Polls /status until <paramref name="condition"/> holds; false if it does not within <see cref="ApplyTimeout"/>.</summary>
    private static async Task<bool> WaitAsync(HttpClient http, Func<JsonNode, bool> condition, CancellationToken stop)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(ApplyTimeout.TotalSeconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < deadline)
        {
            try
            {
                if (condition(JsonNode.Parse(await http.GetStringAsync("/status", stop))!))
                {
                    return true;
                }
            }
            catch (HttpRequestException)
            {
                // Asked again below.
            }

            await Task.Delay(50, stop);
        }

        return false;
    }


    /// <summary>One chore: when it was done, whether it took effect, and how long that took.</summary>
    private sealed record Chore(TimeSpan At, bool Applied, TimeSpan Wait);

    private sealed class Chores
    {
        public List<Chore> Reloads { get; } = [];

        public List<Chore> Restarts { get; } = [];
    }

    /// <summary>RSS after warm-up: medians of a few samples at the end of the warm-up and at the end of the run, and the peak between.</summary>
    internal sealed record Memory(double WarmUp, double End, double Peak, int Window)
    {
        public double GrowthPercent => 100 * (End - WarmUp) / WarmUp;

        public double PeakGrowthPercent => 100 * (Peak - WarmUp) / WarmUp;

        public static Memory Of(IReadOnlyList<ResourceSample> samples, TimeSpan warmUp, int window)
        {
            var after = samples.Where(s => s.AtSeconds > warmUp.TotalSeconds).ToList();
            var atWarmUp = samples.Where(s => s.AtSeconds <= warmUp.TotalSeconds).TakeLast(window).ToList();
            if (atWarmUp.Count == 0 || after.Count == 0)
            {
                throw new InvalidOperationException($"The soak needs RSS samples both before and after its {warmUp.TotalSeconds:0} s warm-up; it had {samples.Count}.");
            }

            return new Memory(Median(atWarmUp), Median(after.TakeLast(window)), after.Max(s => (double)s.RssBytes), window);
        }

        private static double Median(IEnumerable<ResourceSample> samples)
        {
            var sorted = samples.Select(s => (double)s.RssBytes).Order().ToArray();
            return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
        }
    }
}
