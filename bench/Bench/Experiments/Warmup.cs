using System.Globalization;
using Bench.Processes;
using Bench.Reporting;
using Bench.Stats;

namespace Bench.Experiments;

/// <summary>
/// How soon after start each proxy (bare YARP too: whether a change of pace is YARP's and .NET's or ours)
/// serves at its steady rate: a fresh process, then wrk -c64 in one-second
/// slices, back to back, for a minute; the requests each second, and the first second from which three in a
/// row average 90% of the proxy's steady rate (the median of the last ten seconds).
/// </summary>
internal static class Warmup
{
    public const double Share = 0.9;
    public const double TargetSeconds = 10;

    public static async Task RunAsync(Lab lab, Report report)
    {
        var options = lab.Options;
        var seconds = options.Smoke ? 5 : 60;
        var curves = new List<(string Proxy, List<double> Rps, double StartSeconds)>();
        var proxies = new List<(string, Func<Task<Target>>)>
        {
            ("balancer", () => lab.StartBalancerAsync("balancer-fresh", "RoundRobin")),
            (Race.BareYarp, () => lab.StartBareYarpAsync("bare-yarp-fresh")),
            ("nginx", () => lab.StartNginxAsync("nginx-fresh")),
            ("haproxy", () => lab.StartHaproxyAsync("haproxy-fresh")),
        };
        if (options.AotExecutable is not null)
        {
            proxies.Insert(1, ("balancer-aot", () => lab.StartAotBalancerAsync("balancer-aot-fresh", "RoundRobin")));
        }

        foreach (var (name, start) in proxies)
        {
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            var target = await start();
            var ready = System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds;
            var rps = new List<double>();
            try
            {
                for (var second = 0; second < seconds; second++)
                {
                    var wrk = await lab.WrkAsync(target.Url, 64, TimeSpan.FromSeconds(1));
                    rps.Add(wrk.RequestsPerSecond);
                }
            }
            finally
            {
                lab.Stop(target);
            }

            curves.Add((name, rps, ready));
        }

        var section = report.Add("warmup: requests per second from the first request")
            .Text($"Each proxy started fresh (the time from start to its first answer is the 'ready' column), then wrk -c64 on `GET /` in 1 s slices " +
                  $"for {seconds} s, on the CPU layout of `race`. Steady: the median of the last {Math.Min(10, seconds)} seconds. " +
                  $"'90% after' is the first second from which three seconds in a row average {Share:0%} of steady (counted from the first request).");
        var table = new Table(["proxy", "ready after (s)", "first second RPS", "steady RPS", "90% after (s)"]);
        foreach (var (proxy, rps, ready) in curves)
        {
            table.Row(proxy, ready, rps[0], Steady(rps), ReachedAfter(rps));
        }

        section.Table(table)
            .Chart("warmup-rps.svg", "requests per second in each second after the first request", SvgChart.Lines("Requests per second from the first request", "requests/s",
                [.. Enumerable.Range(1, seconds).Select(s => (double)s)], "second", [.. curves.Select(c => new Series(c.Proxy, c.Rps))]));
        var perSecond = new Table(["second", .. curves.Select(c => c.Proxy)]);
        for (var second = 0; second < seconds; second++)
        {
            perSecond.Row((second + 1).ToString(CultureInfo.InvariantCulture), [.. curves.Select(c => c.Rps[second])]);
        }

        section.Text("Every second:").Table(perSecond);
        foreach (var (proxy, rps, _) in curves.Where(c => Race.IsBalancer(c.Proxy)))
        {
            var reached = ReachedAfter(rps);
            report.Targets.Add(new TargetCheck("warmup", $"{proxy} at {Share:0%} of its steady RPS within {TargetSeconds:0} s of the first request",
                $"{reached:0} s", reached <= TargetSeconds));
        }
    }

    private static double Steady(IReadOnlyList<double> rps) => LatencyStats.Median(rps.Skip(Math.Max(0, rps.Count - 10)));

    /// <summary>Seconds from the first request to the end of the first of three seconds that average the share of steady.</summary>
    internal static double ReachedAfter(IReadOnlyList<double> rps)
    {
        var steady = Steady(rps);
        for (var i = 0; i + 3 <= rps.Count; i++)
        {
            if ((rps[i] + rps[i + 1] + rps[i + 2]) / 3 >= Share * steady)
            {
                return i + 1;
            }
        }

        return rps.Count;
    }
}
