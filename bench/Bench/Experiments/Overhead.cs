using Bench.Processes;
using Bench.Reporting;

namespace Bench.Experiments;

/// <summary>
/// The cost of the balancer's features: bare YARP (bench/BareYarp: LoadFromConfig, built-in RoundRobin,
/// no metrics, tracing, retries or management listener) against the full balancer, alternated, same wrk;
/// and the full balancer again with its OpenTelemetry tracing exported over OTLP to a sink that discards,
/// at several sample ratios. Compared round by round (<see cref="PairedRatio"/>).
/// </summary>
internal static class Overhead
{
    public const int Connections = 64;
    public const double TargetPercent = 5;

    public static async Task RunAsync(Lab lab, Report report)
    {
        var options = lab.Options;
        var proxies = new List<Target>();
        var runs = new List<ProxyRun>();
        IReadOnlyList<WarmUp> warmUps;
        // One sink each, so the report can show what each traced balancer exported.
        await using var sink = await OtlpSink.StartAsync();
        await using var sampledSink = await OtlpSink.StartAsync();
        await using var rareSink = await OtlpSink.StartAsync();
        await using var detailedSink = await OtlpSink.StartAsync();
        await using var detailedSampledSink = await OtlpSink.StartAsync();
        try
        {
            proxies.Add(await lab.StartBareYarpAsync("bare-yarp"));
            proxies.Add(await lab.StartBareYarpAsync("bare-yarp-aspnet-defaults", runtimeDefaults: true));
            proxies.Add(await lab.StartBalancerAsync("balancer-full", "RoundRobin"));
            proxies.Add(await lab.StartBalancerAsync("balancer-traced", "RoundRobin", Tracing(sink)));
            proxies.Add(await lab.StartBalancerAsync("balancer-traced-10pct", "RoundRobin", [.. Tracing(sampledSink), "--Balancer:Tracing:SampleRatio", "0.1"]));
            proxies.Add(await lab.StartBalancerAsync("balancer-traced-1pct", "RoundRobin", [.. Tracing(rareSink), "--Balancer:Tracing:SampleRatio", "0.01"]));
            proxies.Add(await lab.StartBalancerAsync("balancer-traced-detailed", "RoundRobin", [.. Tracing(detailedSink), "--Balancer:Tracing:Detailed", "true"]));
            proxies.Add(await lab.StartBalancerAsync(
                "balancer-traced-detailed-10pct",
                "RoundRobin",
                [.. Tracing(detailedSampledSink), "--Balancer:Tracing:Detailed", "true", "--Balancer:Tracing:SampleRatio", "0.1"]));
            warmUps = await Measured.WarmUpAsync(lab, proxies);
            for (var run = 1; run <= options.OverheadRuns; run++)
            {
                foreach (var proxy in proxies)
                {
                    runs.Add(await Measured.WrkAsync(lab, proxy, Connections, run, options.OverheadRunDuration));
                }
            }
        }
        finally
        {
            proxies.ForEach(lab.Stop);
        }

        List<ProxyRun> Of(string proxy) => [.. runs.Where(r => r.Proxy == proxy)];
        var bare = ProxySummary.Of(Of("bare-yarp"));
        var defaults = ProxySummary.Of(Of("bare-yarp-aspnet-defaults"));
        var full = ProxySummary.Of(Of("balancer-full"));
        var traced = ProxySummary.Of(Of("balancer-traced"));
        var sampled = ProxySummary.Of(Of("balancer-traced-10pct"));
        var rare = ProxySummary.Of(Of("balancer-traced-1pct"));
        var detailed = ProxySummary.Of(Of("balancer-traced-detailed"));
        var detailedSampled = ProxySummary.Of(Of("balancer-traced-detailed-10pct"));
        PairedRatio Vs(ProxySummary s, ProxySummary baseline) => PairedRatio.Of(Of(s.Proxy), Of(baseline.Proxy));

        var table = new Table(["proxy", "RPS", "p50 (ms)", "p99 (ms)", "CPU s / 100k req", "best-run CPU µs / req", "peak RSS (MB)", "failed (%)"]);
        foreach (var s in new[] { bare, defaults, full, traced, sampled, rare, detailed, detailedSampled })
        {
            table.Row(s.Proxy, s.Rps, s.P50, s.P99, s.CpuPer100k, s.BestCpuPer100k * 10, s.PeakRssMb, s.FailedPercent);
        }

        var runtime = Vs(defaults, bare);
        var features = Vs(full, bare);
        var tracing = Vs(traced, full);
        var tracingSampled = Vs(sampled, full);
        var tracingRare = Vs(rare, full);
        var tracingDetailed = Vs(detailed, full);
        var tracingDetailedSampled = Vs(detailedSampled, full);
        var endToEnd = Vs(traced, bare);
        var endToEndSampled = Vs(sampled, bare);
        var endToEndRare = Vs(rare, bare);
        var pairedTable = new Table(["proxy vs baseline, round by round", "RPS ratio (median)", "CPU per request ratio (median)", "rounds"]);
        foreach (var (name, paired) in new[]
                 {
                     ("bare-yarp-aspnet-defaults vs bare-yarp", runtime), ("balancer-full vs bare-yarp", features), ("balancer-traced vs balancer-full", tracing),
                     ("balancer-traced-10pct vs balancer-full", tracingSampled), ("balancer-traced-1pct vs balancer-full", tracingRare),
                     ("balancer-traced-detailed vs balancer-full", tracingDetailed), ("balancer-traced-detailed-10pct vs balancer-full", tracingDetailedSampled),
                     ("balancer-traced vs bare-yarp", endToEnd), ("balancer-traced-10pct vs bare-yarp", endToEndSampled), ("balancer-traced-1pct vs bare-yarp", endToEndRare),
                 })
        {
            pairedTable.Row(name, paired.Rps, paired.CpuPerRequest, paired.Pairs);
        }

        var duration = options.OverheadRunDuration.TotalSeconds;
        report.Add("overhead: the balancer's features vs bare YARP, and what tracing adds")
            .Text($"wrk `-c{Connections} -d{duration:0}s` on `GET /`, {options.OverheadRuns} rounds; each round runs every proxy once, in the order of the table. " +
                  "All read the same generated config file (RoundRobin, active health checks every 2 s) with the same GC settings and an " +
                  "HTTP/1.1 Kestrel listener; bare YARP uses YARP's built-in RoundRobin, the balancer its smooth weighted one. " +
                  "`bare-yarp` also shares the balancer's two runtime settings (no per-request hosting Activity, inline I/O continuations), " +
                  "so the difference to `balancer-full` is the features alone; `bare-yarp-aspnet-defaults` is bare YARP as ASP.NET Core ships, " +
                  "which shows what those two settings are worth. " + WarmUp.Describe(warmUps, options))
            .Text("RPS, latency and CPU are medians of the rounds.")
            .Table(table)
            .Text("**Paired**: each proxy against a baseline round by round " +
                  "(its run against the baseline's run of the same round, a minute apart at most), the median of those ratios: " +
                  "this machine's swings, which last longer than a round, move both runs of a round alike and cancel out, where they would not " +
                  "between medians taken separately. The targets use the paired RPS ratio.")
            .Table(pairedTable)
            .Text($"**Features** (metrics on, tracing off, vs bare YARP): {Cost(features)}. " +
                  $"Runtime settings: bare YARP without them does {Format.Ratio(runtime.Rps)} the RPS of bare YARP with them (paired), " +
                  $"at {Format.Ratio(runtime.CpuPerRequest)} the CPU per request.")
            .Text("**Tracing**: `balancer-full` has its Prometheus metrics on and tracing off (no `OTEL_EXPORTER_OTLP_ENDPOINT`: nothing listens to the activity sources). " +
                  "The `balancer-traced` variants are the same with `--OTEL_EXPORTER_OTLP_ENDPOINT` pointed at an OTLP/HTTP sink in the harness process (on the load generator's CPUs) " +
                  "that accepts and discards every export. Each traced request is a server span and one client span per attempt. " +
                  $"Every request traced (sink: {sink.Exports} exports, {Format.Mb(sink.Bytes)} MB): {Cost(tracing)}. " +
                  $"One in ten (`Balancer:Tracing:SampleRatio` 0.1; {sampledSink.Exports} exports, {Format.Mb(sampledSink.Bytes)} MB): {Cost(tracingSampled)}. " +
                  $"One in a hundred (0.01; {rareSink.Exports} exports, {Format.Mb(rareSink.Bytes)} MB): {Cost(tracingRare)}. " +
                  "A negative cost is noise: the two did the same work within what runs vary by. " +
                  "`balancer-traced-detailed` and `-detailed-10pct` use `Balancer:Tracing:Detailed` (OpenTelemetry's ASP.NET Core and HttpClient instrumentation and YARP's " +
                  "source: three spans per request, sampled by OpenTelemetry after they exist) at ratio 1 and 0.1 " +
                  $"(sinks: {detailedSink.Exports} exports, {Format.Mb(detailedSink.Bytes)} MB; {detailedSampledSink.Exports} exports, {Format.Mb(detailedSampledSink.Bytes)} MB): " +
                  $"{Cost(tracingDetailed)} and {Cost(tracingDetailedSampled)}.")
            .Text($"**Metrics and tracing on vs off**, end to end (bare YARP has neither, nor the balancer's other features): every request traced {Cost(endToEnd)}; " +
                  $"one in ten {Cost(endToEndSampled)}; one in a hundred {Cost(endToEndRare)}.")
            .Text("By each proxy's best run (interference only ever adds CPU, so the least CPU per request of any run is another fair figure on a shared machine), " +
                  $"CPU per request: bare YARP {Micros(bare)}, the balancer {Micros(full)} ({Percent(full, bare)}), tracing every request {Micros(traced)} ({Percent(traced, full)} vs untraced), " +
                  $"one in ten {Micros(sampled)} ({Percent(sampled, full)}), one in a hundred {Micros(rare)} ({Percent(rare, full)}), " +
                  $"detailed {Micros(detailed)} ({Percent(detailed, full)}), detailed one in ten {Micros(detailedSampled)} ({Percent(detailedSampled, full)}).")
            .Text("Every run, in the order run:")
            .Table(Measured.RunsTable(runs))
            .Chart("overhead.svg", "RPS of bare YARP and the full balancer, tracing off and on", SvgChart.Bars("Median requests per second", "requests/s", [$"-c{Connections}"],
                [new Series("bare YARP", [bare.Rps]), new Series("bare, ASP.NET defaults", [defaults.Rps]), new Series("balancer", [full.Rps]), new Series("+ tracing", [traced.Rps]),
                 new Series("+ tracing 10%", [sampled.Rps]), new Series("+ tracing 1%", [rare.Rps]), new Series("+ detailed", [detailed.Rps]), new Series("+ detailed 10%", [detailedSampled.Rps])]));
        report.Targets.Add(new TargetCheck("overhead", $"features cost <= {TargetPercent}% RPS vs bare YARP (paired)", Figure(features), features.RpsCostPercent <= TargetPercent));
        report.Targets.Add(new TargetCheck("overhead", $"tracing every request costs <= {TargetPercent}% RPS vs tracing off (paired)", Figure(tracing), tracing.RpsCostPercent <= TargetPercent));
        report.Targets.Add(new TargetCheck("overhead", $"tracing one request in ten costs <= {TargetPercent}% RPS vs tracing off (paired)", Figure(tracingSampled), tracingSampled.RpsCostPercent <= TargetPercent));
        report.Targets.Add(new TargetCheck("overhead", $"tracing one request in a hundred costs <= {TargetPercent}% RPS vs tracing off (paired)", Figure(tracingRare), tracingRare.RpsCostPercent <= TargetPercent));
    }

    private static string Cost(PairedRatio paired) =>
        $"{Format.Number(paired.RpsCostPercent)}% of the RPS and {Signed(paired.CpuCostPercent)}% CPU per request (paired medians of {paired.Pairs} rounds)";

    private static string Figure(PairedRatio paired) => $"{Format.Number(paired.RpsCostPercent)}% (CPU per request {Signed(paired.CpuCostPercent)}%)";

    private static string Signed(double percent) => (percent >= 0 ? "+" : string.Empty) + Format.Number(percent);

    private static string Micros(ProxySummary s) => $"{Format.Number(s.BestCpuPer100k * 10)} µs";

    private static string Percent(ProxySummary s, ProxySummary baseline) => Signed((s.BestCpuPer100k / baseline.BestCpuPer100k - 1) * 100) + "%";

    private static string[] Tracing(OtlpSink sink) =>
        ["--OTEL_EXPORTER_OTLP_ENDPOINT", sink.Url.ToString(), "--OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"];
}
