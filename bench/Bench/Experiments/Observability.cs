using Bench.Processes;
using Bench.Reporting;
using Bench.Stats;

namespace Bench.Experiments;

/// <summary>
/// What metrics and tracing as shipped cost, on its own: the balancer with metrics and tracing on, against
/// the same balancer with both off, and against an identical copy of the "off" one, which shows in the same
/// run how far two equal proxies drift apart here. Only three proxies, so that a round is short, and many
/// rounds. "On" runs in the middle of every round, between the two "off" processes (which swap places
/// every round), and is compared with their mean: a drift of the machine's speed within a round then moves
/// both sides alike, and neither off process's own quirks decide the figure.
/// </summary>
internal static class Observability
{
    public static async Task RunAsync(Lab lab, Report report)
    {
        var options = lab.Options;
        var rounds = options.ObservabilityRuns;
        var duration = options.OverheadRunDuration;
        var runs = new List<ProxyRun>();
        IReadOnlyList<WarmUp> warmUps;
        Overhead.NewTraces traces;
        await using var sink = await OtlpSink.StartAsync();
        var proxies = new List<Target>();
        try
        {
            string[] off = ["--Balancer:Metrics:Enabled", "false"];
            proxies.Add(await lab.StartBalancerAsync("off", "RoundRobin", off));
            proxies.Add(await lab.StartBalancerAsync("off-copy", "RoundRobin", off));
            var on = await lab.StartRunningBalancerAsync("on", "RoundRobin", Overhead.Tracing(sink));
            proxies.Add(on.Target);
            warmUps = await Measured.WarmUpAsync(lab, proxies);
            for (var round = 1; round <= rounds; round++)
            {
                var order = round % 2 == 1 ? [proxies[0], proxies[2], proxies[1]] : new[] { proxies[1], proxies[2], proxies[0] };
                foreach (var proxy in order)
                {
                    runs.Add(await Measured.WrkAsync(lab, proxy, Overhead.Connections, round, duration));
                }
            }

            traces = await Overhead.NewTraces.ReadAsync(on);
        }
        finally
        {
            proxies.ForEach(lab.Stop);
        }

        List<ProxyRun> Of(string proxy) => [.. runs.Where(r => r.Proxy == proxy)];
        var table = new Table(["proxy", "RPS", "p50 (ms)", "p99 (ms)", "CPU s / 100k req", "best-run CPU µs / req", "peak RSS (MB)", "failed (%)"]);
        foreach (var name in new[] { "off", "off-copy", "on" })
        {
            var s = ProxySummary.Of(Of(name));
            table.Row(s.Proxy, s.Rps, s.P50, s.P99, s.CpuPer100k, s.BestCpuPer100k * 10, s.PeakRssMb, s.FailedPercent);
        }

        var cost = Spread.Of(PairedRatio.Bracketed(Of("on"), Of("off"), Of("off-copy")));
        var vsOff = Spread.Of(PairedRatio.Rounds(Of("on"), Of("off")));
        var vsCopy = Spread.Of(PairedRatio.Rounds(Of("on"), Of("off-copy")));
        var floor = Spread.Of(PairedRatio.Rounds(Of("off-copy"), Of("off")));
        var paired = new Table(["proxy vs baseline, round by round", "RPS lost (%): median", "25th pct", "75th pct", "CPU per request added (%): median", "25th pct", "75th pct", "rounds"]);
        foreach (var (name, spread) in new[]
                 {
                     ("on vs the mean of off and off-copy (the runs before and after it)", cost), ("on vs off", vsOff), ("on vs off-copy", vsCopy),
                     ("off-copy vs off (the noise floor)", floor),
                 })
        {
            paired.Row(name, spread.RpsLost[1], spread.RpsLost[0], spread.RpsLost[2], spread.CpuAdded[1], spread.CpuAdded[0], spread.CpuAdded[2], spread.Pairs);
        }

        report.Add("observability: metrics and tracing on vs off")
            .Text($"wrk `-c{Overhead.Connections} -d{duration.TotalSeconds:0}s` on `GET /`, {rounds} rounds: off, on, off-copy, then off-copy, on, off, and so on. " +
                  "`off`: the balancer with `Balancer:Metrics:Enabled` false and no `OTEL_EXPORTER_OTLP_ENDPOINT`. `off-copy`: the same again, a second process. " +
                  $"`on`: metrics on and tracing as shipped (ratio 1, at most {Format.Number(Overhead.ShippedTraceCap)} new traces a second) to an OTLP/HTTP sink that " +
                  $"discards ({sink.Exports} exports, {Format.Mb(sink.Bytes)} MB; {traces.Describe()}). " + WarmUp.Describe(warmUps, options))
            .Table(table)
            .Text("Each round's run against the baseline's run of the same round (or the mean of both off runs of the round): the median and quartiles of those per-round figures.")
            .Table(paired)
            .Text($"Metrics and tracing on cost {Format.Number(cost.RpsLost[1])}% of the RPS (quartiles {Format.Number(cost.RpsLost[0])} to {Format.Number(cost.RpsLost[2])}%) " +
                  $"and {Format.Number(cost.CpuAdded[1])}% more CPU per request (quartiles {Format.Number(cost.CpuAdded[0])} to {Format.Number(cost.CpuAdded[2])}%), against the mean of the off runs around it; " +
                  $"against each off process alone, {Format.Number(vsOff.RpsLost[1])}% and {Format.Number(vsCopy.RpsLost[1])}%. " +
                  $"Two identical balancers, compared the same way in the same run, differed by {Format.Number(floor.RpsLost[1])}% in RPS " +
                  $"(quartiles {Format.Number(floor.RpsLost[0])} to {Format.Number(floor.RpsLost[2])}%) and {Format.Number(floor.CpuAdded[1])}% in CPU per request.")
            .Text("Every run, in the order run:")
            .Table(Measured.RunsTable(runs));
        report.Targets.Add(new TargetCheck("observability", $"metrics and tracing on cost <= {Overhead.TargetPercent}% RPS vs both off (paired median, against the off runs around it)",
            $"{Format.Number(cost.RpsLost[1])}% (CPU per request {Format.Signed(cost.CpuAdded[1])}%; vs off {Format.Number(vsOff.RpsLost[1])}%, vs off-copy {Format.Number(vsCopy.RpsLost[1])}%; identical copies: {Format.Number(floor.RpsLost[1])}%)",
            cost.RpsLost[1] <= Overhead.TargetPercent));
    }

    /// <summary>Per-round RPS lost and CPU per request added, in percent: 25th, 50th and 75th percentiles.</summary>
    internal sealed record Spread(int Pairs, double[] RpsLost, double[] CpuAdded)
    {
        public static Spread Of(IReadOnlyList<(double Rps, double CpuPerRequest)> rounds) =>
            rounds.Count == 0
                ? new Spread(0, [double.NaN, double.NaN, double.NaN], [double.NaN, double.NaN, double.NaN])
                : new Spread(rounds.Count, Quartiles(rounds.Select(r => (1 - r.Rps) * 100)), Quartiles(rounds.Select(r => (r.CpuPerRequest - 1) * 100)));

        private static double[] Quartiles(IEnumerable<double> values)
        {
            var sorted = values.ToArray();
            Array.Sort(sorted);
            return [LatencyStats.Percentile(sorted, 25), LatencyStats.Percentile(sorted, 50), LatencyStats.Percentile(sorted, 75)];
        }
    }
}
