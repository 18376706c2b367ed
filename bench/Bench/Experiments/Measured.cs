using Bench.Load;
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
        runs.Max(r => r.Wrk.FailedPercent));
}

internal static class Measured
{
    public static async Task<ProxyRun> WrkAsync(Lab lab, Target target, int connections, int run)
    {
        var cpuBefore = ProcStat.CpuSeconds(target.Pid);
        var wrkCpuBefore = ProcStat.ReapedChildrenCpuSeconds();
        await using var sampler = new ResourceSampler(target.Pid, TimeSpan.FromSeconds(1));
        var wrk = await lab.WrkAsync(target.Url, connections, lab.Options.RunDuration);
        var samples = await sampler.StopAsync();
        var cpu = ProcStat.CpuSeconds(target.Pid) - cpuBefore;
        var wrkCpu = ProcStat.ReapedChildrenCpuSeconds() - wrkCpuBefore;
        var rss = ProcStat.RssBytes(target.Pid);
        foreach (var sample in samples)
        {
            rss = Math.Max(rss, sample.RssBytes);
        }

        // Percent of the load generator's CPUs: near 100 means wrk, not the proxy, set the pace.
        return new ProxyRun(target.Name, connections, run, wrk, cpu, rss, 100 * wrkCpu / wrk.Seconds / lab.Options.LoadCoreCount);
    }

    /// <summary>The same wrk run for every proxy before measuring: JIT, connection pools, page cache (<see cref="Options.WarmupDuration"/>).</summary>
    public static async Task WarmUpAsync(Lab lab, IEnumerable<Target> targets)
    {
        foreach (var target in targets)
        {
            await lab.WrkAsync(target.Url, 64, lab.Options.WarmupDuration);
        }
    }
}
