using Bench.Processes;
using Bench.Reporting;

namespace Bench.Experiments;

/// <summary>
/// The cost of the balancer's features: bare YARP (bench/BareYarp: LoadFromConfig, built-in RoundRobin,
/// no metrics, tracing, retries or management listener) against the full balancer, alternated, same wrk;
/// and the full balancer again with its OpenTelemetry tracing exported over OTLP to a sink that discards,
/// at several sample ratios; and the full balancer writing its access log to a file. Compared round by
/// round (<see cref="PairedRatio"/>).
/// </summary>
internal static class Overhead
{
    public const int Connections = 64;
    public const double TargetPercent = 5;

    /// <summary>The balancer's default <c>Balancer:Tracing:MaxTracesPerSecond</c>, as the report names it (a test keeps the two equal).</summary>
    public const double ShippedTraceCap = 100;

    public static async Task RunAsync(Lab lab, Report report)
    {
        var options = lab.Options;
        var proxies = new List<Target>();
        var runs = new List<ProxyRun>();
        IReadOnlyList<WarmUp> warmUps;
        NewTraces capped;
        // One sink each, so the report can show what each traced balancer exported.
        await using var sink = await OtlpSink.StartAsync();
        await using var uncappedSink = await OtlpSink.StartAsync();
        await using var sampledSink = await OtlpSink.StartAsync();
        await using var rareSink = await OtlpSink.StartAsync();
        await using var detailedSink = await OtlpSink.StartAsync();
        await using var detailedSampledSink = await OtlpSink.StartAsync();
        // Outside the results folder: a run writes hundreds of megabytes of it.
        var accessLogDirectory = Directory.CreateTempSubdirectory("bench-access-log-").FullName;
        var accessLog = Path.Combine(accessLogDirectory, "access.log");
        AccessLogSize written;
        try
        {
            proxies.Add(await lab.StartBareYarpAsync("bare-yarp"));
            proxies.Add(await lab.StartBareYarpAsync("bare-yarp-aspnet-defaults", runtimeDefaults: true));
            proxies.Add(await lab.StartBalancerAsync("balancer-no-metrics", "RoundRobin", "--Balancer:Metrics:Enabled", "false"));
            proxies.Add(await lab.StartBalancerAsync("balancer-full", "RoundRobin"));
            proxies.Add(await lab.StartBalancerAsync("balancer-access-log", "RoundRobin", "--Balancer:AccessLog:Path", accessLog));
            // Tracing as shipped: every request, up to Balancer:Tracing:MaxTracesPerSecond new traces a second.
            var shipped = await lab.StartRunningBalancerAsync("balancer-traced", "RoundRobin", Tracing(sink));
            proxies.Add(shipped.Target);
            // The others without the cap, so that each measures its sample ratio alone.
            proxies.Add(await lab.StartBalancerAsync("balancer-traced-uncapped", "RoundRobin", [.. Tracing(uncappedSink), .. Uncapped]));
            proxies.Add(await lab.StartBalancerAsync("balancer-traced-10pct", "RoundRobin", [.. Tracing(sampledSink), .. Uncapped, "--Balancer:Tracing:SampleRatio", "0.1"]));
            proxies.Add(await lab.StartBalancerAsync("balancer-traced-1pct", "RoundRobin", [.. Tracing(rareSink), .. Uncapped, "--Balancer:Tracing:SampleRatio", "0.01"]));
            proxies.Add(await lab.StartBalancerAsync("balancer-traced-detailed", "RoundRobin", [.. Tracing(detailedSink), .. Uncapped, "--Balancer:Tracing:Detailed", "true"]));
            proxies.Add(await lab.StartBalancerAsync(
                "balancer-traced-detailed-10pct",
                "RoundRobin",
                [.. Tracing(detailedSampledSink), .. Uncapped, "--Balancer:Tracing:Detailed", "true", "--Balancer:Tracing:SampleRatio", "0.1"]));
            warmUps = await Measured.WarmUpAsync(lab, proxies);
            for (var run = 1; run <= options.OverheadRuns; run++)
            {
                foreach (var proxy in proxies)
                {
                    runs.Add(await Measured.WrkAsync(lab, proxy, Connections, run, options.OverheadRunDuration));
                }
            }

            capped = await NewTraces.ReadAsync(shipped);
        }
        finally
        {
            proxies.ForEach(lab.Stop);
            written = AccessLogSize.Of(accessLog);
            Directory.Delete(accessLogDirectory, recursive: true);
        }

        List<ProxyRun> Of(string proxy) => [.. runs.Where(r => r.Proxy == proxy)];
        var bare = ProxySummary.Of(Of("bare-yarp"));
        var defaults = ProxySummary.Of(Of("bare-yarp-aspnet-defaults"));
        var noMetrics = ProxySummary.Of(Of("balancer-no-metrics"));
        var full = ProxySummary.Of(Of("balancer-full"));
        var logged = ProxySummary.Of(Of("balancer-access-log"));
        var traced = ProxySummary.Of(Of("balancer-traced"));
        var uncapped = ProxySummary.Of(Of("balancer-traced-uncapped"));
        var sampled = ProxySummary.Of(Of("balancer-traced-10pct"));
        var rare = ProxySummary.Of(Of("balancer-traced-1pct"));
        var detailed = ProxySummary.Of(Of("balancer-traced-detailed"));
        var detailedSampled = ProxySummary.Of(Of("balancer-traced-detailed-10pct"));
        PairedRatio Vs(ProxySummary s, ProxySummary baseline) => PairedRatio.Of(Of(s.Proxy), Of(baseline.Proxy));

        var table = new Table(["proxy", "RPS", "p50 (ms)", "p99 (ms)", "CPU s / 100k req", "best-run CPU µs / req", "peak RSS (MB)", "failed (%)"]);
        foreach (var s in new[] { bare, defaults, noMetrics, full, logged, traced, uncapped, sampled, rare, detailed, detailedSampled })
        {
            table.Row(s.Proxy, s.Rps, s.P50, s.P99, s.CpuPer100k, s.BestCpuPer100k * 10, s.PeakRssMb, s.FailedPercent);
        }

        var runtime = Vs(defaults, bare);
        var features = Vs(full, bare);
        var metrics = Vs(full, noMetrics);
        var accessLogCost = Vs(logged, full);
        var observability = Vs(traced, noMetrics);
        var observabilityUncapped = Vs(uncapped, noMetrics);
        var tracing = Vs(traced, full);
        var tracingUncapped = Vs(uncapped, full);
        var tracingSampled = Vs(sampled, full);
        var tracingRare = Vs(rare, full);
        var tracingDetailed = Vs(detailed, full);
        var tracingDetailedSampled = Vs(detailedSampled, full);
        var endToEnd = Vs(traced, bare);
        var endToEndUncapped = Vs(uncapped, bare);
        var endToEndSampled = Vs(sampled, bare);
        var endToEndRare = Vs(rare, bare);
        var pairedTable = new Table(["proxy vs baseline, round by round", "RPS ratio (median)", "CPU per request ratio (median)", "rounds"]);
        foreach (var (name, paired) in new[]
                 {
                     ("bare-yarp-aspnet-defaults vs bare-yarp", runtime), ("balancer-full vs bare-yarp", features), ("balancer-full vs balancer-no-metrics", metrics), ("balancer-access-log vs balancer-full", accessLogCost), ("balancer-traced vs balancer-full", tracing),
                     ("balancer-traced-uncapped vs balancer-full", tracingUncapped),
                     ("balancer-traced vs balancer-no-metrics", observability), ("balancer-traced-uncapped vs balancer-no-metrics", observabilityUncapped),
                     ("balancer-traced-10pct vs balancer-full", tracingSampled), ("balancer-traced-1pct vs balancer-full", tracingRare),
                     ("balancer-traced-detailed vs balancer-full", tracingDetailed), ("balancer-traced-detailed-10pct vs balancer-full", tracingDetailedSampled),
                     ("balancer-traced vs bare-yarp", endToEnd), ("balancer-traced-uncapped vs bare-yarp", endToEndUncapped), ("balancer-traced-10pct vs bare-yarp", endToEndSampled), ("balancer-traced-1pct vs bare-yarp", endToEndRare),
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
            .Text("**Metrics and tracing on vs off**: `balancer-no-metrics` is the balancer with `Balancer:Metrics:Enabled` false " +
                  "(no per-request counting or timing) and tracing off; against it, metrics on with tracing as shipped " +
                  $"(`balancer-traced`) costs {Cost(observability)}; metrics on with every request traced, uncapped, {Cost(observabilityUncapped)}. " +
                  $"Metrics alone (`balancer-full` vs `balancer-no-metrics`): {Cost(metrics)}.")
            .Text("**Access log on vs off**: `balancer-access-log` is `balancer-full` with `Balancer:AccessLog:Path` set to a file on the local disk " +
                  $"(one JSON line per request; {written.Describe()}): {Cost(accessLogCost)}. " +
                  $"By the best run, CPU per request {Micros(logged)} against {Micros(full)} ({Percent(logged, full)}).")
            .Text($"**Features** (metrics on, tracing off, vs bare YARP): {Cost(features)}. " +
                  $"Runtime settings: bare YARP without them does {Format.Ratio(runtime.Rps)} the RPS of bare YARP with them (paired), " +
                  $"at {Format.Ratio(runtime.CpuPerRequest)} the CPU per request.")
            .Text("**Tracing**: `balancer-full` has its Prometheus metrics on and tracing off (no `OTEL_EXPORTER_OTLP_ENDPOINT`: nothing listens to the activity sources). " +
                  "The `balancer-traced` variants are the same with `--OTEL_EXPORTER_OTLP_ENDPOINT` pointed at an OTLP/HTTP sink in the harness process (on the load generator's CPUs) " +
                  "that accepts and discards every export. Each traced request is a server span and one client span per attempt. " +
                  $"**As shipped** (`balancer-traced`: ratio 1, at most {Format.Number(ShippedTraceCap)} new traces a second; " +
                  $"sink: {sink.Exports} exports, {Format.Mb(sink.Bytes)} MB; {capped.Describe()}): {Cost(tracing)}. " +
                  "The other traced variants have `Balancer:Tracing:MaxTracesPerSecond` 0 (no cap), so that each shows what its ratio alone costs. " +
                  $"Every request traced, uncapped ({uncappedSink.Exports} exports, {Format.Mb(uncappedSink.Bytes)} MB): {Cost(tracingUncapped)}. " +
                  $"One in ten (`Balancer:Tracing:SampleRatio` 0.1; {sampledSink.Exports} exports, {Format.Mb(sampledSink.Bytes)} MB): {Cost(tracingSampled)}. " +
                  $"One in a hundred (0.01; {rareSink.Exports} exports, {Format.Mb(rareSink.Bytes)} MB): {Cost(tracingRare)}. " +
                  "A negative cost is noise: the two did the same work within what runs vary by. " +
                  "`balancer-traced-detailed` and `-detailed-10pct` use `Balancer:Tracing:Detailed` (OpenTelemetry's ASP.NET Core and HttpClient instrumentation and YARP's " +
                  "source: three spans per request, sampled by OpenTelemetry after they exist) at ratio 1 and 0.1 " +
                  $"(sinks: {detailedSink.Exports} exports, {Format.Mb(detailedSink.Bytes)} MB; {detailedSampledSink.Exports} exports, {Format.Mb(detailedSampledSink.Bytes)} MB): " +
                  $"{Cost(tracingDetailed)} and {Cost(tracingDetailedSampled)}.")
            .Text($"**End to end** (bare YARP has no metrics and no tracing, nor the balancer's other features): tracing as shipped {Cost(endToEnd)}; " +
                  $"every request traced, uncapped {Cost(endToEndUncapped)}; " +
                  $"one in ten {Cost(endToEndSampled)}; one in a hundred {Cost(endToEndRare)}.")
            .Text("By each proxy's best run (interference only ever adds CPU, so the least CPU per request of any run is another fair figure on a shared machine), " +
                  $"CPU per request: bare YARP {Micros(bare)}, the balancer with metrics off {Micros(noMetrics)}, with metrics on {Micros(full)} ({Percent(full, bare)} vs bare YARP, {Percent(full, noMetrics)} vs metrics off), tracing as shipped {Micros(traced)} ({Percent(traced, full)} vs untraced), " +
                  $"every request uncapped {Micros(uncapped)} ({Percent(uncapped, full)}), " +
                  $"one in ten {Micros(sampled)} ({Percent(sampled, full)}), one in a hundred {Micros(rare)} ({Percent(rare, full)}), " +
                  $"detailed {Micros(detailed)} ({Percent(detailed, full)}), detailed one in ten {Micros(detailedSampled)} ({Percent(detailedSampled, full)}).")
            .Text("Every run, in the order run:")
            .Table(Measured.RunsTable(runs))
            .Chart("overhead.svg", "RPS of bare YARP and the full balancer, tracing off and on", SvgChart.Bars("Median requests per second", "requests/s", [$"-c{Connections}"],
                [new Series("bare YARP", [bare.Rps]), new Series("bare, ASP.NET defaults", [defaults.Rps]), new Series("balancer, metrics off", [noMetrics.Rps]), new Series("balancer", [full.Rps]), new Series("+ access log", [logged.Rps]), new Series("+ tracing", [traced.Rps]),
                 new Series("+ tracing uncapped", [uncapped.Rps]),
                 new Series("+ tracing 10%", [sampled.Rps]), new Series("+ tracing 1%", [rare.Rps]), new Series("+ detailed", [detailed.Rps]), new Series("+ detailed 10%", [detailedSampled.Rps])]));
        report.Targets.Add(new TargetCheck("overhead", $"metrics and tracing on (as shipped) cost <= {TargetPercent}% RPS vs both off (paired)", Figure(observability), observability.RpsCostPercent <= TargetPercent));
        report.Targets.Add(new TargetCheck("overhead", $"the access log costs <= {TargetPercent}% RPS vs off (paired)", Figure(accessLogCost), accessLogCost.RpsCostPercent <= TargetPercent));
        report.Targets.Add(new TargetCheck("overhead", $"features cost <= {TargetPercent}% RPS vs bare YARP (paired)", Figure(features), features.RpsCostPercent <= TargetPercent));
        report.Targets.Add(new TargetCheck("overhead", $"tracing as shipped (every request, capped) costs <= {TargetPercent}% RPS vs tracing off (paired)", Figure(tracing), tracing.RpsCostPercent <= TargetPercent));
        report.Targets.Add(new TargetCheck("overhead", $"tracing every request, uncapped, costs <= {TargetPercent}% RPS vs tracing off (paired)", Figure(tracingUncapped), tracingUncapped.RpsCostPercent <= TargetPercent));
        report.Targets.Add(new TargetCheck("overhead", $"tracing one request in ten costs <= {TargetPercent}% RPS vs tracing off (paired)", Figure(tracingSampled), tracingSampled.RpsCostPercent <= TargetPercent));
        report.Targets.Add(new TargetCheck("overhead", $"tracing one request in a hundred costs <= {TargetPercent}% RPS vs tracing off (paired)", Figure(tracingRare), tracingRare.RpsCostPercent <= TargetPercent));
    }

    private static string Cost(PairedRatio paired) =>
        $"{Format.Number(paired.RpsCostPercent)}% of the RPS and {Format.Signed(paired.CpuCostPercent)}% CPU per request (paired medians of {paired.Pairs} rounds)";

    private static string Figure(PairedRatio paired) => $"{Format.Number(paired.RpsCostPercent)}% (CPU per request {Format.Signed(paired.CpuCostPercent)}%)";

    private static string Micros(ProxySummary s) => $"{Format.Number(s.BestCpuPer100k * 10)} µs";

    private static string Percent(ProxySummary s, ProxySummary baseline) => Format.Signed((s.BestCpuPer100k / baseline.BestCpuPer100k - 1) * 100) + "%";

    private static readonly string[] Uncapped = ["--Balancer:Tracing:MaxTracesPerSecond", "0"];

    internal static string[] Tracing(OtlpSink sink) =>
        ["--OTEL_EXPORTER_OTLP_ENDPOINT", sink.Url.ToString(), "--OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"];

    /// <summary>How much the access-log balancer wrote over its whole life (warm-up and rounds).</summary>
    private sealed record AccessLogSize(long Bytes, long Lines)
    {
        public static AccessLogSize Of(string path)
        {
            if (!File.Exists(path))
            {
                return new(0, 0);
            }

            long lines = 0;
            foreach (var _ in File.ReadLines(path))
            {
                lines++;
            }

            return new(new FileInfo(path).Length, lines);
        }

        public string Describe() =>
            $"{Format.Mb(Bytes)} MB in {Lines} lines written, {(Lines == 0 ? 0 : Bytes / Lines)} bytes a line";
    }

    /// <summary>What the capped balancer's <c>balancer_tracing_new_traces_total</c> counted over its whole life (warm-up and rounds).</summary>
    internal sealed record NewTraces(double Started, double RateLimited)
    {
        public static async Task<NewTraces> ReadAsync(RunningBalancer balancer)
        {
            var counts = await balancer.CountersAsync("balancer_tracing_new_traces_total", "result");
            return new NewTraces(counts.GetValueOrDefault("started"), counts.GetValueOrDefault("rate_limited"));
        }

        public string Describe() =>
            $"{Started:0} traces started, {RateLimited:0} requests left untraced by the cap, " +
            $"{Format.Number(Started + RateLimited == 0 ? 0 : 100 * Started / (Started + RateLimited))}% of its requests traced";
    }
}
