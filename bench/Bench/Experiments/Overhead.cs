using Bench.Processes;
using Bench.Reporting;

namespace Bench.Experiments;

/// <summary>
/// The cost of the balancer's features: bare YARP (bench/BareYarp: LoadFromConfig, built-in RoundRobin,
/// no metrics, tracing, retries or management listener) against the full balancer, alternated, same wrk;
/// and the full balancer again with its OpenTelemetry tracing exported over OTLP to a sink that discards.
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
        await using var detailedSink = await OtlpSink.StartAsync();
        await using var detailedSampledSink = await OtlpSink.StartAsync();
        try
        {
            proxies.Add(await lab.StartBareYarpAsync("bare-yarp"));
            proxies.Add(await lab.StartBareYarpAsync("bare-yarp-aspnet-defaults", runtimeDefaults: true));
            proxies.Add(await lab.StartBalancerAsync("balancer-full", "RoundRobin"));
            proxies.Add(await lab.StartBalancerAsync("balancer-traced", "RoundRobin", Tracing(sink)));
            proxies.Add(await lab.StartBalancerAsync(
                "balancer-traced-10pct",
                "RoundRobin",
                [.. Tracing(sampledSink), "--Balancer:Tracing:SampleRatio", "0.1"]));
            proxies.Add(await lab.StartBalancerAsync("balancer-traced-detailed", "RoundRobin", [.. Tracing(detailedSink), "--Balancer:Tracing:Detailed", "true"]));
            proxies.Add(await lab.StartBalancerAsync(
                "balancer-traced-detailed-10pct",
                "RoundRobin",
                [.. Tracing(detailedSampledSink), "--Balancer:Tracing:Detailed", "true", "--Balancer:Tracing:SampleRatio", "0.1"]));
            warmUps = await Measured.WarmUpAsync(lab, proxies);
            for (var run = 1; run <= options.RepeatedRuns; run++)
            {
                foreach (var proxy in proxies)
                {
                    runs.Add(await Measured.WrkAsync(lab, proxy, Connections, run));
                }
            }
        }
        finally
        {
            proxies.ForEach(lab.Stop);
        }

        var bare = ProxySummary.Of([.. runs.Where(r => r.Proxy == "bare-yarp")]);
        var defaults = ProxySummary.Of([.. runs.Where(r => r.Proxy == "bare-yarp-aspnet-defaults")]);
        var full = ProxySummary.Of([.. runs.Where(r => r.Proxy == "balancer-full")]);
        var traced = ProxySummary.Of([.. runs.Where(r => r.Proxy == "balancer-traced")]);
        var sampled = ProxySummary.Of([.. runs.Where(r => r.Proxy == "balancer-traced-10pct")]);
        var detailed = ProxySummary.Of([.. runs.Where(r => r.Proxy == "balancer-traced-detailed")]);
        var detailedSampled = ProxySummary.Of([.. runs.Where(r => r.Proxy == "balancer-traced-detailed-10pct")]);
        var table = new Table(["proxy", "RPS", "p50 (ms)", "p99 (ms)", "CPU s / 100k req", "peak RSS (MB)", "failed (%)"]);
        foreach (var s in new[] { bare, defaults, full, traced, sampled, detailed, detailedSampled })
        {
            table.Row(s.Proxy, s.Rps, s.P50, s.P99, s.CpuPer100k, s.PeakRssMb, s.FailedPercent);
        }

        var cost = (bare.Rps - full.Rps) / bare.Rps * 100;
        var tracingCost = (full.Rps - traced.Rps) / full.Rps * 100;
        var sampledCost = (full.Rps - sampled.Rps) / full.Rps * 100;
        report.Add("overhead: the balancer's features vs bare YARP")
            .Text($"wrk `-c{Connections} -d{options.RunDuration.TotalSeconds:0}s` on `GET /`, {options.RepeatedRuns} runs each, alternated; medians. " +
                  "Both read the same generated config file (RoundRobin, active health checks every 2 s) with the same GC settings and an " +
                  "HTTP/1.1 Kestrel listener; bare YARP uses YARP's built-in RoundRobin, the balancer its smooth weighted one. " +
                  "`bare-yarp` also shares the balancer's two runtime settings (no per-request hosting Activity, inline I/O continuations), " +
                  "so the difference to `balancer-full` is the features alone; `bare-yarp-aspnet-defaults` is bare YARP as ASP.NET Core ships, " +
                  "which shows what those two settings are worth. " + WarmUp.Describe(warmUps, options))
            .Table(table)
            .Text($"Feature cost: {Format.Number(cost)}% of bare YARP's RPS; CPU per request ratio {Format.Ratio(full.CpuPer100k / bare.CpuPer100k)}. " +
                  $"Runtime settings: bare YARP with them does {Format.Ratio(bare.Rps / defaults.Rps)} the RPS of bare YARP without them, " +
                  $"at {Format.Ratio(bare.CpuPer100k / defaults.CpuPer100k)} the CPU per request.")
            .Text("`balancer-full` has its Prometheus metrics on and tracing off (no `OTEL_EXPORTER_OTLP_ENDPOINT`: nothing listens to the activity sources). " +
                  "`balancer-traced` is the same with `--OTEL_EXPORTER_OTLP_ENDPOINT` pointed at an OTLP/HTTP sink in the harness process (on the load generator's CPUs) " +
                  $"that accepts and discards every export: it received {sink.Exports} exports, {Format.Mb(sink.Bytes)} MB. " +
                  $"Tracing cost: {Format.Number(tracingCost)}% of the untraced balancer's RPS; metrics and tracing together vs bare YARP: " +
                  $"{Format.Number((bare.Rps - traced.Rps) / bare.Rps * 100)}%. " +
                  "Each traced request is a server span and one client span per attempt. " +
                  "`balancer-traced-10pct` starts a trace for one request in ten (`Balancer:Tracing:SampleRatio` 0.1; " +
                  $"its sink received {sampledSink.Exports} exports, {Format.Mb(sampledSink.Bytes)} MB): " +
                  $"{Format.Number(sampledCost)}% of the untraced balancer's RPS, CPU per request ratio {Format.Ratio(sampled.CpuPer100k / full.CpuPer100k)} " +
                  $"(every request traced: {Format.Ratio(traced.CpuPer100k / full.CpuPer100k)}). A negative cost is noise: the two did the same work within what runs vary by. " +
                  "`balancer-traced-detailed` and `-detailed-10pct` use `Balancer:Tracing:Detailed` (OpenTelemetry's ASP.NET Core and HttpClient instrumentation and YARP's " +
                  "source: three spans per request, sampled by OpenTelemetry after they exist) at ratio 1 and 0.1 " +
                  $"(sinks: {detailedSink.Exports} exports, {Format.Mb(detailedSink.Bytes)} MB; {detailedSampledSink.Exports} exports, {Format.Mb(detailedSampledSink.Bytes)} MB): " +
                  $"{Format.Number((full.Rps - detailed.Rps) / full.Rps * 100)}% and {Format.Number((full.Rps - detailedSampled.Rps) / full.Rps * 100)}% of the untraced balancer's RPS.")
            .Text("By each proxy's best run (interference only ever adds CPU, so the least CPU per request of any run is the fairest figure on a shared machine), " +
                  $"CPU per request: bare YARP {Micros(bare)}, the balancer {Micros(full)} ({Percent(full, bare)}), tracing every request {Micros(traced)} ({Percent(traced, full)} vs untraced), " +
                  $"one in ten {Micros(sampled)} ({Percent(sampled, full)}), detailed {Micros(detailed)} ({Percent(detailed, full)}), detailed one in ten {Micros(detailedSampled)} ({Percent(detailedSampled, full)}).")
            .Text("Every run, in the order run:")
            .Table(Measured.RunsTable(runs))
            .Chart("overhead.svg", "RPS of bare YARP and the full balancer, tracing off and on", SvgChart.Bars("Median requests per second", "requests/s", [$"-c{Connections}"],
                [new Series("bare YARP", [bare.Rps]), new Series("bare, ASP.NET defaults", [defaults.Rps]), new Series("balancer", [full.Rps]), new Series("+ tracing", [traced.Rps]), new Series("+ tracing 10%", [sampled.Rps]), new Series("+ detailed", [detailed.Rps]), new Series("+ detailed 10%", [detailedSampled.Rps])]));
        report.Targets.Add(new TargetCheck("overhead", $"features cost <= {TargetPercent}% RPS vs bare YARP", $"{Format.Number(cost)}%", cost <= TargetPercent));
        report.Targets.Add(new TargetCheck("overhead", $"tracing every request costs <= {TargetPercent}% RPS vs tracing off", $"{Format.Number(tracingCost)}%", tracingCost <= TargetPercent));
        report.Targets.Add(new TargetCheck("overhead", $"tracing one request in ten costs <= {TargetPercent}% RPS vs tracing off", $"{Format.Number(sampledCost)}%", sampledCost <= TargetPercent));
    }

    private static string Micros(ProxySummary s) => $"{Format.Number(s.BestCpuPer100k * 10)} µs";

    private static string Percent(ProxySummary s, ProxySummary baseline) =>
        $"{(s.BestCpuPer100k >= baseline.BestCpuPer100k ? "+" : string.Empty)}{Format.Number((s.BestCpuPer100k / baseline.BestCpuPer100k - 1) * 100)}%";

    private static string[] Tracing(OtlpSink sink) =>
        ["--OTEL_EXPORTER_OTLP_ENDPOINT", sink.Url.ToString(), "--OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"];
}
