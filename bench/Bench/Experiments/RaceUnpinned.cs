using Bench.Processes;
using Bench.Reporting;

namespace Bench.Experiments;

/// <summary>
/// The race with nothing pinned: the balancer, NGINX and HAProxy each on every CPU (NGINX workers and HAProxy
/// threads as many), sharing them with wrk and the backends, as on a small machine where nobody sets CPU
/// affinity. Then what a proxy costs takes CPU away from the backends and the load generator, so RPS
/// shows it; wrk -c64, runs alternated, medians.
/// </summary>
internal static class RaceUnpinned
{
    public const int Connections = 64;
    public const double TargetRatio = 0.85;

    public static async Task RunAsync(Lab lab, Report report)
    {
        var options = lab.Options;
        string[] names;
        List<ProxyRun> runs;
        IReadOnlyList<WarmUp> warmUps;
        string cpus;
        using (lab.Unpinned())
        {
            cpus = lab.ProxyCpus;
            (names, runs, warmUps) = await Race.RunTrioAsync(lab, [Connections]);
        }

        var summaries = names.ToDictionary(n => n, n => ProxySummary.Of([.. runs.Where(r => r.Proxy == n)]));
        var section = report.Add("race-unpinned: balancer vs bare YARP vs NGINX vs HAProxy, nothing pinned")
            .Text($"As `race` at -c{Connections}, but every process (wrk -t{CpuList.Count(cpus)}, the three backends, the proxy) shares CPUs {cpus}: " +
                  $"NGINX {CpuList.Count(cpus)} workers, HAProxy `nbthread {CpuList.Count(cpus)}`, the balancer sees every CPU. " +
                  $"{options.RepeatedRuns} runs of {options.RunDuration.TotalSeconds:0} s per proxy, alternated; medians. " + WarmUp.Describe(warmUps, options));
        var table = new Table(["proxy", "RPS", "p50 (ms)", "p99 (ms)", "CPU s / 100k req", "peak RSS (MB)", "failed (%)", "RPS vs NGINX"]);
        foreach (var name in names)
        {
            var s = summaries[name];
            table.Row(name, s.Rps, s.P50, s.P99, s.CpuPer100k, s.PeakRssMb, s.FailedPercent, s.Rps / summaries["nginx"].Rps);
        }

        section.Table(table)
            .Chart("race-unpinned-rps.svg", "median RPS per proxy, nothing pinned", SvgChart.Bars("Median requests per second, nothing pinned", "requests/s", [$"-c{Connections}"],
                [.. names.Select(n => new Series(n, [summaries[n].Rps]))]));
        Measured.AddRuns(section, "Every run, in the order run:", runs);
        foreach (var balancer in names.Where(Race.IsBalancer))
        {
            var ratio = summaries[balancer].Rps / summaries["nginx"].Rps;
            report.Targets.Add(new TargetCheck("race-unpinned", $"{balancer} RPS >= {TargetRatio}x NGINX's, nothing pinned, -c{Connections}", Format.Ratio(ratio), ratio >= TargetRatio));
        }
    }
}
