using Bench.Processes;
using Bench.Reporting;

namespace Bench.Experiments;

/// <summary>
/// The balancer (all features) against bare YARP, NGINX and HAProxy in front of the same three backends, wrk at 64
/// and 256 connections, runs alternated in one session so drift hits every proxy alike; medians.
/// </summary>
internal static class Race
{
    public static readonly int[] Connections = [64, 256];

    public static async Task RunAsync(Lab lab, Report report)
    {
        var options = lab.Options;
        var (names, runs, warmUps) = await RunTrioAsync(lab, Connections);
        var summaries = (from r in runs group r by (r.Proxy, r.Connections) into g select ProxySummary.Of([.. g])).ToList();
        ProxySummary Of(string proxy, int connections) => summaries.Single(s => s.Proxy == proxy && s.Connections == connections);

        var section = report.Add("race: balancer vs bare YARP vs NGINX vs HAProxy")
            .Text($"wrk `-t{options.LoadCoreCount} -c64|-c256 -d{options.RunDuration.TotalSeconds:0}s --latency` on `GET /` through each proxy, " +
                  $"{options.RepeatedRuns} runs per proxy and connection count, run order balancer, bare-yarp (plain YARP with the balancer's runtime settings), nginx, haproxy, balancer, ...; " +
                  "medians over runs. The balancer runs RoundRobin with active health checks and its metrics (tracing exporter off); " +
                  $"NGINX {options.ProxyCoreCount} worker(s) with `keepalive {ProxyConfigs.NginxUpstreamKeepalive}` upstream (idle connections kept per worker); HAProxy `nbthread {options.ProxyCoreCount}` with " +
                  "http-keep-alive and health checks every 2 s (NGINX open source has none); all three send X-Forwarded-For, -Proto and -Host. CPU is user+system seconds of the proxy's processes (NGINX master and workers) per 100,000 requests; " +
                  "RSS is the peak of per-second samples. " + WarmUp.Describe(warmUps, options));
        var table = new Table(["proxy, connections", "RPS", "p50 (ms)", "p99 (ms)", "CPU s / 100k req", "peak RSS (MB)", "failed (%)"]);
        foreach (var connections in Connections)
        {
            foreach (var name in names)
            {
                var s = Of(name, connections);
                table.Row($"{name} -c{connections}", s.Rps, s.P50, s.P99, s.CpuPer100k, s.PeakRssMb, s.FailedPercent);
            }
        }

        section.Table(table);
        var ratios = new Table(["balancer vs", "RPS ratio -c64", "RPS ratio -c256", "p99 ratio -c64", "p99 ratio -c256", "CPU/req ratio -c64", "CPU/req ratio -c256", "best-run CPU/req ratio -c64", "best-run CPU/req ratio -c256"]);
        foreach (var balancer in names.Where(n => IsBalancer(n) || n == BareYarp))
        {
            foreach (var other in names.Where(n => n != balancer && n != "balancer" && !(balancer == BareYarp && IsBalancer(n))))
            {
                ratios.Row(balancer == "balancer" ? other : $"{other} ({balancer})",
                    [.. Connections.Select(c => Of(balancer, c).Rps / Of(other, c).Rps),
                     .. Connections.Select(c => Of(balancer, c).P99 / Of(other, c).P99),
                     .. Connections.Select(c => Of(balancer, c).CpuPer100k / Of(other, c).CpuPer100k),
                     .. Connections.Select(c => Of(balancer, c).BestCpuPer100k / Of(other, c).BestCpuPer100k)]);
            }
        }

        section.Text("Ratios: the balancer's median divided by the other proxy's (RPS above 1 is better, p99 and CPU below 1 are better; " +
                     "rows marked (balancer-aot) divide the Native AOT build's instead, rows marked (bare-yarp) plain YARP's, which shows what YARP and .NET cost before any feature of ours); " +
                     "best-run CPU compares each proxy's least CPU per request of any run, which interference from the rest of the machine cannot lower.")
            .Table(ratios);
        var categories = Connections.Select(c => $"-c{c}").ToArray();
        section.Chart("race-rps.svg", "median RPS per proxy", SvgChart.Bars("Median requests per second", "requests/s", categories,
                [.. names.Select(n => new Series(n, [.. Connections.Select(c => Of(n, c).Rps)]))]))
            .Chart("race-p99.svg", "median p99 latency per proxy", SvgChart.Bars("Median p99 latency", "ms", categories,
                [.. names.Select(n => new Series(n, [.. Connections.Select(c => Of(n, c).P99)]))]))
            .Chart("race-cpu.svg", "proxy CPU seconds per 100k requests", SvgChart.Bars("Proxy CPU per 100k requests", "CPU seconds", categories,
                [.. names.Select(n => new Series(n, [.. Connections.Select(c => Of(n, c).CpuPer100k)]))]));

        Measured.AddRuns(section, "Every run, in the order run (wrk CPU is the share of the load generator's CPUs wrk used; near 100% the load generator, not the proxy, was the limit):", runs);

        foreach (var balancer in names.Where(IsBalancer))
        {
            var rps64 = Of(balancer, 64).Rps / Of("nginx", 64).Rps;
            var rps256 = Of(balancer, 256).Rps / Of("nginx", 256).Rps;
            report.Targets.Add(new TargetCheck("race", $"{balancer} RPS >= 0.8x NGINX at -c64", Format.Ratio(rps64), rps64 >= 0.8));
            report.Targets.Add(new TargetCheck("race", $"{balancer} RPS >= 1.0x NGINX at -c256", Format.Ratio(rps256), rps256 >= 1.0));
            foreach (var c in Connections)
            {
                var p99 = Of(balancer, c).P99 / Of("nginx", c).P99;
                report.Targets.Add(new TargetCheck("race", $"{balancer} p99 <= 1.2x NGINX's at -c{c}", Format.Ratio(p99), p99 <= 1.2));
            }
        }
    }

    /// <summary>Plain YARP with the balancer's runtime settings and none of its features, raced beside it.</summary>
    public const string BareYarp = "bare-yarp";

    /// <summary>The balancer and, when asked for, its Native AOT build (<c>balancer-aot</c>).</summary>
    public static bool IsBalancer(string name) => name.StartsWith("balancer", StringComparison.Ordinal);

    /// <summary>
    /// Starts the balancer, bare YARP, NGINX and HAProxy on the lab's proxy CPUs, warms each, then runs wrk against each in
    /// turn, run after run, at each connection count; stops them. Returns the proxies' names in run order.
    /// </summary>
    public static async Task<(string[] Names, List<ProxyRun> Runs, IReadOnlyList<WarmUp> WarmUps)> RunTrioAsync(Lab lab, IReadOnlyList<int> connectionCounts)
    {
        var proxies = new List<Target>();
        var runs = new List<ProxyRun>();
        try
        {
            proxies.Add(await lab.StartBalancerAsync("balancer", "RoundRobin"));
            if (lab.Options.AotExecutable is not null)
            {
                proxies.Add(await lab.StartAotBalancerAsync("balancer-aot", "RoundRobin"));
            }

            proxies.Add(await lab.StartBareYarpAsync(BareYarp));
            proxies.Add(await lab.StartNginxAsync("nginx"));
            proxies.Add(await lab.StartHaproxyAsync("haproxy"));
            var warmUps = await Measured.WarmUpAsync(lab, proxies);
            foreach (var connections in connectionCounts)
            {
                for (var run = 1; run <= lab.Options.RepeatedRuns; run++)
                {
                    foreach (var proxy in proxies)
                    {
                        runs.Add(await Measured.WrkAsync(lab, proxy, connections, run));
                    }
                }
            }

            return ([.. proxies.Select(p => p.Name)], runs, warmUps);
        }
        finally
        {
            proxies.ForEach(lab.Stop);
        }
    }
}
