using System.Diagnostics;
using Bench.Load;
using Bench.Reporting;
using Bench.Processes;
using Bench.Stats;

namespace Bench.Experiments;

/// <summary>One wrk run against a proxy with the proxy's CPU time and memory over that run.</summary>
internal sealed record ProxyRun(string Proxy, int Connections, int Run, WrkResult Wrk, double CpuSeconds, long PeakRssBytes, double LoadGeneratorCpuPercent)
{
    /// <summary>The proxy's CPU seconds (user + system, all its processes) per 100,000 requests.</summary>
    public double CpuPer100k => Wrk.Requests == 0 ? 0 : CpuSeconds / Wrk.Requests * 100_000;
}

/// <summary>Medians over repeated runs of one proxy at one connection count.</summary>
internal sealed record ProxySummary(string Proxy, int Connections, int Runs, double Rps, double P50, double P99, double CpuPer100k, double PeakRssMb, double FailedPercent)
{
    public static ProxySummary Of(IReadOnlyList<ProxyRun> runs) => new(
        runs[0].Proxy,
        runs[0].Connections,
        runs.Count,
        LatencyStats.Median(runs.Select(r => r.Wrk.RequestsPerSecond)),
        LatencyStats.Median(runs.Select(r => r.Wrk.P50Ms)),
        LatencyStats.Median(runs.Select(r => r.Wrk.P99Ms)),
        LatencyStats.Median(runs.Select(r => r.CpuPer100k)),
        runs.Max(r => r.PeakRssBytes) / 1024.0 / 1024.0,
        runs.Max(r => r.Wrk.FailedPercent))
    {
        BestCpuPer100k = runs.Min(r => r.CpuPer100k),
    };

    /// <summary>
    /// The least CPU per request of any run. Interference from the rest of a shared machine only ever adds
    /// CPU per request, so on a noisy machine the best run is the fairest estimate of what a proxy costs.
    /// </summary>
    public double BestCpuPer100k { get; init; }
}

/// <summary>
/// A proxy against a baseline run by run: run i of each went within the same round, a minute or less apart,
/// so both met about the same interference. The medians of these per-round ratios are the side-by-side
/// figures; the whole machine's slow swings, which move both runs of a round alike, cancel out of them.
/// </summary>
internal sealed record PairedRatio(int Pairs, double Rps, double CpuPerRequest)
{
    public static PairedRatio Of(IReadOnlyList<ProxyRun> runs, IReadOnlyList<ProxyRun> baseline)
    {
        var rounds = Rounds(runs, baseline);
        return rounds.Count == 0
            ? new PairedRatio(0, double.NaN, double.NaN)
            : new PairedRatio(rounds.Count, LatencyStats.Median(rounds.Select(r => r.Rps)), LatencyStats.Median(rounds.Select(r => r.CpuPerRequest)));
    }

    /// <summary>Each run's RPS and CPU per request as ratios to the baseline's run of the same round.</summary>
    public static List<(double Rps, double CpuPerRequest)> Rounds(IReadOnlyList<ProxyRun> runs, IReadOnlyList<ProxyRun> baseline) =>
        Bracketed(runs, baseline, baseline);

    /// <summary>
    /// Each run's RPS and CPU per request as ratios to the mean of two baselines' runs of the same round. When
    /// the round ran one baseline just before the run and the other just after, a drift of the machine's
    /// speed during the round moves the run and that mean alike, and so does not count as a difference.
    /// </summary>
    public static List<(double Rps, double CpuPerRequest)> Bracketed(IReadOnlyList<ProxyRun> runs, IReadOnlyList<ProxyRun> baseline, IReadOnlyList<ProxyRun> otherBaseline)
    {
        var rounds = new List<(double, double)>();
        foreach (var run in runs)
        {
            var first = baseline.FirstOrDefault(b => b.Run == run.Run && b.Connections == run.Connections);
            var second = otherBaseline.FirstOrDefault(b => b.Run == run.Run && b.Connections == run.Connections);
            if (first is null || second is null)
            {
                continue;
            }

            var rps = (first.Wrk.RequestsPerSecond + second.Wrk.RequestsPerSecond) / 2;
            var cpu = (first.CpuPer100k + second.CpuPer100k) / 2;
            if (rps > 0 && cpu > 0)
            {
                rounds.Add((run.Wrk.RequestsPerSecond / rps, run.CpuPer100k / cpu));
            }
        }

        return rounds;
    }

    /// <summary>Percent of the baseline's RPS lost: positive is slower, negative faster.</summary>
    public double RpsCostPercent => (1 - Rps) * 100;

    /// <summary>Percent more CPU per request than the baseline.</summary>
    public double CpuCostPercent => (CpuPerRequest - 1) * 100;
}

internal static class Measured
{
    public static Task<ProxyRun> WrkAsync(Lab lab, Target target, int connections, int run) =>
        WrkAsync(lab, target, connections, run, lab.Options.RunDuration);

    public static Task<ProxyRun> WrkAsync(Lab lab, Target target, int connections, int run, TimeSpan duration) =>
        MeasureAsync(lab, target, target.Name, connections, run, () => lab.WrkAsync(target.Url, connections, duration));

    /// <summary>
    /// One run of any load tool that reports as wrk does (wrk, h2load), with the proxy's CPU and memory over it.
    /// <paramref name="label"/> names the run in the report (the proxy, and the mode when one proxy is driven several ways).
    /// </summary>
    public static async Task<ProxyRun> MeasureAsync(Lab lab, Target target, string label, int connections, int run, Func<Task<WrkResult>> load)
    {
        var cpuBefore = ProcStat.CpuSeconds(target.Pid);
        var wrkCpuBefore = ProcStat.ReapedChildrenCpuSeconds();
        await using var sampler = new ResourceSampler(target.Pid, TimeSpan.FromSeconds(1));
        var wrk = await load();
        var samples = await sampler.StopAsync();
        var cpu = ProcStat.CpuSeconds(target.Pid) - cpuBefore;
        var wrkCpu = ProcStat.ReapedChildrenCpuSeconds() - wrkCpuBefore;
        var rss = ProcStat.RssBytes(target.Pid);
        foreach (var sample in samples)
        {
            rss = Math.Max(rss, sample.RssBytes);
        }

        // Percent of the load generator's CPUs: near 100 means wrk, not the proxy, set the pace.
        return new ProxyRun(label, connections, run, wrk, cpu, rss, 100 * wrkCpu / wrk.Seconds / lab.Options.LoadCoreCount);
    }

    /// <summary>Every run in the order run, for the report: a drift or an outlier shows here, not in the medians.</summary>
    public static Table RunsTable(IEnumerable<ProxyRun> runs)
    {
        var table = new Table(["proxy, connections, run", "RPS", "p50 (ms)", "p99 (ms)", "max (ms)", "requests", "proxy CPU s", "CPU µs / req", "peak RSS (MB)", "wrk CPU (%)"]);
        foreach (var r in runs)
        {
            table.Row($"{r.Proxy} -c{r.Connections} #{r.Run}", r.Wrk.RequestsPerSecond, r.Wrk.P50Ms, r.Wrk.P99Ms, r.Wrk.MaxMs, r.Wrk.Requests, r.CpuSeconds,
                r.CpuPer100k * 10, r.PeakRssBytes / 1024.0 / 1024, r.LoadGeneratorCpuPercent);
        }

        return table;
    }

    /// <summary>
    /// <see cref="RunsTable"/> under <paramref name="intro"/>, and a warning naming the runs where the load
    /// generator used 90% or more of its CPUs: their RPS is a floor for the proxy, not its limit.
    /// </summary>
    public static void AddRuns(Section section, string intro, IReadOnlyList<ProxyRun> runs)
    {
        section.Text(intro).Table(RunsTable(runs));
        var saturated = runs.Where(r => r.LoadGeneratorCpuPercent >= 90).Select(r => $"{r.Proxy} -c{r.Connections} #{r.Run}").ToList();
        if (saturated.Count > 0)
        {
            section.Text($"Warning: the load generator used 90% or more of its CPUs in {string.Join(", ", saturated)}; those RPS figures are a floor for the proxy, not its limit.");
        }
    }

    /// <summary>Within this, two settle rounds in a row count as agreeing.</summary>
    public const double SettledWithin = 0.05;

    /// <summary>
    /// Warms every proxy the same way before anything is measured: <see cref="Options.WarmupDuration"/> of wrk
    /// -c64, then settle rounds until two in a row agree on the proxy's CPU per request within 5%, at most
    /// <see cref="Options.MaxSettleRounds"/>. A fixed warm-up measured the balancer's first run at 1.6 times
    /// the CPU per request of its third: its JIT was still promoting code.
    /// </summary>
    public static async Task<IReadOnlyList<WarmUp>> WarmUpAsync(Lab lab, IEnumerable<Target> targets)
    {
        var options = lab.Options;
        var warmUps = new List<WarmUp>();
        foreach (var target in targets)
        {
            var started = Stopwatch.GetTimestamp();
            await lab.WrkAsync(target.Url, 64, options.WarmupDuration);
            var rounds = new List<double>();
            while (rounds.Count < options.MaxSettleRounds && !WarmUp.Agree(rounds))
            {
                var cpuBefore = ProcStat.CpuSeconds(target.Pid);
                var wrk = await lab.WrkAsync(target.Url, 64, options.SettleRoundDuration);
                rounds.Add(wrk.Requests == 0 ? double.NaN : (ProcStat.CpuSeconds(target.Pid) - cpuBefore) / wrk.Requests * 1e6);
            }

            warmUps.Add(new WarmUp(target.Name, Stopwatch.GetElapsedTime(started).TotalSeconds, rounds));
        }

        return warmUps;
    }
}

/// <summary>How one proxy was warmed: seconds of load in all, and its CPU µs per request in each settle round.</summary>
internal sealed record WarmUp(string Proxy, double Seconds, IReadOnlyList<double> MicrosecondsPerRequest)
{
    public bool Settled => Agree(MicrosecondsPerRequest);

    public static bool Agree(IReadOnlyList<double> rounds) =>
        rounds.Count >= 2 && Math.Abs(rounds[^1] - rounds[^2]) <= Measured.SettledWithin * rounds[^2];

    /// <summary>One sentence for the report: what each proxy got and where its CPU per request ended.</summary>
    public static string Describe(IReadOnlyList<WarmUp> warmUps, Options options) =>
        $"Warm-up: {options.WarmupDuration.TotalSeconds:0} s of wrk -c64 per proxy, then {options.SettleRoundDuration.TotalSeconds:0} s rounds until two in a row " +
        $"agreed on CPU per request within {Measured.SettledWithin * 100:0}% (at most {options.MaxSettleRounds}): " +
        string.Join("; ", warmUps.Select(w =>
            $"{w.Proxy} {w.Seconds:0} s, rounds {string.Join(" / ", w.MicrosecondsPerRequest.Select(u => u.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture)))} µs" +
            (w.Settled ? "" : " (not settled)"))) + ".";
}
