using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Bench.Load;
using Bench.Processes;
using Bench.Reporting;
using Bench.Stats;

namespace Bench.Experiments;

/// <summary>
/// One cluster of 3 to 10,000 destinations, all pointing at the three sample backends, with random weights
/// 1-1000 (seeded): what the balancer holds per destination (RSS, beside plain YARP on the same config), what
/// <c>/metrics</c> weighs and how long a scrape takes under load, RPS and p99 under wrk, and the worst latency a
/// client sees while the config is reloaded (every weight changed) and while 20 destinations change state.
/// </summary>
internal static partial class Scale
{
    private const int Seed = 22;
    private const int Connections = 32;
    private const int Changes = 20;
    /// <summary>
    /// Scrapes per load run, one after another: Prometheus scrapes a balancer for as long as it runs, so the figure is the
    /// median of several; the first, which runs the scrape's code before the JIT has optimised it, is reported beside it.
    /// </summary>
    private const int Scrapes = 10;
    private const double ScrapeTargetMs = 200;
    private const double MemoryTargetKb = 10;
    private const double ReloadTargetSeconds = 2;
    private const double ReloadStallTargetMs = 10;
    private const double ChangeTargetMs = 1;
    private const int RestWindows = 5;
    private static readonly TimeSpan SettleTimeout = TimeSpan.FromSeconds(120);
    private static readonly TimeSpan Quiet = TimeSpan.FromSeconds(1);

    /// <summary>How long each window of the probing client is: at rest, and at least during a change.</summary>
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(3);

    /// <summary>The probing client's pace: a request every 2 ms, or at once when the last took longer.</summary>
    private static readonly TimeSpan ProbeInterval = TimeSpan.FromMilliseconds(2);

    /// <summary>How much longer than the shortest change window wrk runs, for a change that takes longer.</summary>
    private static readonly TimeSpan LoadAfterWindow = TimeSpan.FromSeconds(5);

    /// <summary>How long a change window may last before the change is given up as not applied.</summary>
    private static readonly TimeSpan LongestChange = TimeSpan.FromSeconds(20);

    public static async Task RunAsync(Lab lab, Report report)
    {
        var options = lab.Options;
        var duration = TimeSpan.FromSeconds(options.Duration ?? (options.Smoke ? 2 : 10));
        var results = new List<Result>();
        foreach (var count in options.ScaleCounts)
        {
            Console.Out.WriteLine($"[{DateTime.UtcNow:HH:mm:ss}]   scale: {count} destinations");
            results.Add(await MeasureAsync(lab, count, duration));
        }

        var smallest = results[0];
        var table = new Table(["destinations", "start-up (s)", "all Up after (s)", "RSS (MB)", "plain YARP RSS (MB)", "RSS per destination above plain YARP (KB)",
            "/metrics (MB)", "/metrics lines", "scrape under load, median (ms)", "first scrape (ms)", "RPS", "p99 (ms)", "failed (%)"]);
        var changes = new Table(["destinations, change", "applied in (s)", "worst at rest, median of windows (ms)", "worst during (ms)", "stall: worst during - at rest (ms)",
            "p99 at rest (ms)", "p99 during (ms)", "longest GC pause at rest, median of windows (ms)", "longest GC pause during (ms)", "requests per window at rest", "requests during", "failed during"]);
        foreach (var r in results)
        {
            table.Row(Format.Number(r.Count), r.StartSeconds, r.SettledSeconds, Mb(r.RssBytes), Mb(r.BareRssBytes), PerDestinationKb(r, smallest),
                Mb(r.MetricsBytes), r.MetricsLines, r.ScrapeMs, r.FirstScrapeMs, r.Load.RequestsPerSecond, r.Load.P99Ms, r.Load.FailedPercent);
            foreach (var (name, phase) in (ReadOnlySpan<(string, Phase)>)[("reload", r.Reload), ($"{Changes} state changes", r.Burst)])
            {
                changes.Row($"{Format.Number(r.Count)}, {name}", phase.AppliedSeconds, phase.RestWorstMs, phase.Change.WorstMs, phase.StallMs, phase.RestP99Ms, phase.Change.P99Ms,
                    phase.RestGcMs, phase.ChangeGcMs, phase.RestRequests, phase.Change.Requests, phase.Change.Failed);
            }
        }

        var section = report.Add("scale: thousands of destinations");
        section.Text($"One RoundRobin cluster of {string.Join(", ", results.Select(r => Format.Number(r.Count)))} destinations (d00000, d00001, ...), each pointing at one of the three " +
                  $"sample backends in turn, weights 1-1000 drawn with seed {Seed}; active health checks every 5 s (timeout 2 s), so that 10,000 destinations " +
                  "are probed 2,000 times a second rather than 5,000. Per count, a fresh balancer: start-up until it answers, then until `/status?state=Up` " +
                  $"counts every destination; wrk `-c{Connections} -d{duration.TotalSeconds:0}s` on `GET /`, scraping `/metrics` one scrape after another " +
                  $"from a fifth of the way in, up to {Scrapes} times while more than a second of the load is left (the median time and the first, the whole body read); RSS after the load. Then plain YARP (`bench/BareYarp`) on the same config under " +
                  $"the same wrk run, for its RSS: the balancer's memory per destination above YARP's is (balancer(N) - balancer({Format.Number(smallest.Count)})) - " +
                  $"(YARP(N) - YARP({Format.Number(smallest.Count)})), divided by the destinations added.")
            .Table(table)
            .Text($"What a change adds to a request, under load: while wrk `-c{Connections}` runs, a client sends one request at a time on one connection, " +
                  $"a new one every {ProbeInterval.TotalMilliseconds:0} ms (at once when the last took longer), timed from its start. Its requests are cut into " +
                  $"{RestWindows} windows of {Window.TotalSeconds:0} s at rest, then one window from the change until at least {Window.TotalSeconds:0} s later and " +
                  $"{Quiet.TotalSeconds:0} s after the change is done; the stall is the worst request of the change window minus the median of the rest windows' " +
                  $"worst. Two changes, each with its own wrk run: the config file replaced by one with every weight drawn again (seed {Seed + 1}; done when " +
                  $"the balancer logs the reload applied; the file is written before the windows), and {Changes} state changes through the runtime API one after another (drain and enable, d00000 to " +
                  "d00009 in turn: each takes a destination out of the available set or puts it back). The GC pauses come from the runtime's own events " +
                  "(`bench/PauseWatch`, EventPipe, attached for the whole run): the longest that began in each window.")
            .Table(changes);

        AddPacedReport(section, report, results.Select(r => (r.Count, r.Paced)).ToList());
        var largest = results[^1];
        var scrapeAt = results.LastOrDefault(r => r.Count <= 3000) ?? largest;
        Console.Out.WriteLine($"[{DateTime.UtcNow:HH:mm:ss}]   scale: {scrapeAt.Count} destinations, per-destination histograms in every cluster");
        var full = await FullHistogramsScrapeAsync(lab, scrapeAt.Count, duration);
        var histogramsTable = new Table(["destinations, `Balancer:Metrics:PerDestinationHistograms`", "/metrics (MB)", "/metrics lines", "scrape under load, median (ms)", "first scrape (ms)", "RPS", "p99 (ms)"]);
        histogramsTable.Row($"{Format.Number(scrapeAt.Count)}, unset (default: per cluster above 500 destinations)", Mb(scrapeAt.MetricsBytes), scrapeAt.MetricsLines, scrapeAt.ScrapeMs, scrapeAt.FirstScrapeMs, scrapeAt.Load.RequestsPerSecond, scrapeAt.Load.P99Ms);
        histogramsTable.Row($"{Format.Number(scrapeAt.Count)}, true", Mb(full.Bytes), full.Lines, full.Ms, full.FirstMs, full.Wrk.RequestsPerSecond, full.Wrk.P99Ms);
        section.Text($"The scrape under load again at {Format.Number(scrapeAt.Count)} destinations, on a fresh balancer with `Balancer:Metrics:PerDestinationHistograms` true " +
                "(a latency histogram per destination whatever the cluster's size), the same wrk run:")
            .Table(histogramsTable);
        var memory = PerDestinationKb(largest, smallest);
        report.Targets.Add(new TargetCheck("scale", $"per-destination memory <= {MemoryTargetKb} KB above plain YARP's (RSS, {Format.Number(largest.Count)} destinations)",
            $"{Format.Number(memory)} KB", memory <= MemoryTargetKb));
        report.Targets.Add(new TargetCheck("scale", $"`/metrics` scrape under load < {ScrapeTargetMs} ms ({Format.Number(scrapeAt.Count)} destinations)",
            $"{Format.Number(scrapeAt.ScrapeMs)} ms ({Format.Number(scrapeAt.MetricsLines)} lines, {Mb(scrapeAt.MetricsBytes).ToString("0.#", CultureInfo.InvariantCulture)} MB)", scrapeAt.ScrapeMs < ScrapeTargetMs));
        report.Targets.Add(new TargetCheck("scale", $"`/metrics` scrape under load < {ScrapeTargetMs} ms ({Format.Number(scrapeAt.Count)} destinations, `Balancer:Metrics:PerDestinationHistograms` true)",
            $"{Format.Number(full.Ms)} ms ({Format.Number(full.Lines)} lines, {Mb(full.Bytes).ToString("0.#", CultureInfo.InvariantCulture)} MB)", full.Ms < ScrapeTargetMs));
        var reload = largest.Reload;
        report.Targets.Add(new TargetCheck("scale", $"reload of {Format.Number(largest.Count)} destinations applied within {ReloadTargetSeconds} s, no failed request, no request more than {ReloadStallTargetMs} ms slower than the worst at rest (under load)",
            $"applied in {Format.Number(reload.AppliedSeconds)} s, {reload.Change.Failed} failed, worst {Format.Number(reload.Change.WorstMs)} ms (at rest {Format.Number(reload.RestWorstMs)} ms)",
            reload.AppliedSeconds <= ReloadTargetSeconds && reload.Change.Failed == 0 && reload.StallMs <= ReloadStallTargetMs));
        var burst = largest.Burst;
        report.Targets.Add(new TargetCheck("scale", $"{Changes} state changes at {Format.Number(largest.Count)} destinations add < {ChangeTargetMs} ms to any request (worst during vs worst at rest, under load), none fails",
            $"worst {Format.Number(burst.Change.WorstMs)} ms vs {Format.Number(burst.RestWorstMs)} ms at rest, {burst.Change.Failed} failed",
            burst.StallMs < ChangeTargetMs && burst.Change.Failed == 0));
    }

    private static async Task<Result> MeasureAsync(Lab lab, int count, TimeSpan duration)
    {
        using var health = new HealthSwitch();
        var destinations = Destinations(count, lab.Backends, Seed, health);
        var started = Stopwatch.StartNew();
        var balancer = await lab.StartRunningBalancerAsync($"scale-{count}", "RoundRobin", destinations);
        var startSeconds = started.Elapsed.TotalSeconds;
        using var management = new HttpClient { BaseAddress = balancer.Management, Timeout = TimeSpan.FromSeconds(60) };
        Result result;
        try
        {
            await UntilAsync(async () => (await ClusterAsync(management, "?state=Up&limit=1"))["matching"]!.GetValue<int>() == count, $"all {count} destinations Up");
            var settledSeconds = started.Elapsed.TotalSeconds;
            var (wrk, scrapes) = await ScrapeUnderLoadAsync(lab, balancer, management, duration);
            var rss = ProcStat.RssBytes(balancer.Target.Pid);

            // Written before the windows: editing a file of several MB is the harness's own CPU and garbage, on the CPU its
            // probing client shares, and inside the change window it made the client's requests slow before the balancer
            // had even read the file.
            var next = Prepare(balancer, Destinations(count, lab.Backends, Seed + 1, health));
            // Done when the balancer logs the reload's outcome: asking /status instead (every destination listed and sorted at
            // each poll, over 10 ms of CPU at 10,000) put the harness's own load on the proxy's CPU during the change window only.
            var log = new LogTail(Path.Combine(lab.Directory, $"scale-{count}.log"));
            var reload = await ChangeUnderLoadAsync(lab, balancer, $"scale-{count}-reload", async () =>
            {
                File.Move(next, balancer.ConfigPath, overwrite: true);
                await UntilAsync(
                    () => Task.FromResult(log.Next("Config reloaded and applied", "Config reload rejected") switch
                    {
                        null => false,
                        "Config reload rejected" => throw new InvalidOperationException("The balancer rejected the reloaded config; see its log."),
                        _ => true,
                    }),
                    "the reload applied",
                    TimeSpan.FromMilliseconds(5));
            });

            var burst = await ChangeUnderLoadAsync(lab, balancer, $"scale-{count}-changes", async () =>
            {
                for (var i = 0; i < Changes; i++)
                {
                    var id = $"d{i / 2 % count:00000}";
                    using var response = await management.PostAsync($"/api/destinations/backends/{id}/{(i % 2 == 0 ? "drain" : "enable")}", null);
                    response.EnsureSuccessStatusCode();
                }
            });

            var paced = await PacedAsync(lab, balancer, management, count, health);
            result = new Result(count, startSeconds, settledSeconds, rss, 0, scrapes.Max(s => s.Bytes), scrapes.Max(s => s.Lines),
                LatencyStats.Median(scrapes.Select(s => s.Ms)), scrapes[0].Ms, wrk, reload, burst, paced);
        }
        finally
        {
            lab.Stop(balancer.Target);
        }

        var bare = await lab.StartBareYarpAsync($"scale-{count}-yarp", destinations);
        try
        {
            await lab.WrkAsync(bare.Url, Connections, duration);
            return result with { BareRssBytes = ProcStat.RssBytes(bare.Pid) };
        }
        finally
        {
            lab.Stop(bare);
        }
    }

    /// <summary>
    /// wrk on the balancer for <paramref name="duration"/>, scraping <c>/metrics</c> one scrape after another from a fifth of the way in,
    /// at most <see cref="Scrapes"/> times and none starting in the load's last second, so that every scrape competes with requests.
    /// </summary>
    private static async Task<(WrkResult Wrk, List<(double Ms, long Bytes, int Lines)> Scrapes)> ScrapeUnderLoadAsync(Lab lab, RunningBalancer balancer, HttpClient management, TimeSpan duration)
    {
        var loadTime = Stopwatch.StartNew();
        var load = lab.WrkAsync(balancer.Target.Url, Connections, duration);
        await Task.Delay(duration / 5);
        var scrapes = new List<(double Ms, long Bytes, int Lines)>();
        while (scrapes.Count < Scrapes && (scrapes.Count == 0 || loadTime.Elapsed < duration - TimeSpan.FromSeconds(1)))
        {
            var watch = Stopwatch.StartNew();
            var text = await management.GetStringAsync("/metrics");
            scrapes.Add((watch.Elapsed.TotalMilliseconds, System.Text.Encoding.UTF8.GetByteCount(text), text.Count(c => c == '\n')));
        }

        return (await load, scrapes);
    }

    /// <summary>
    /// The scrape under load again at <paramref name="count"/> destinations, with <c>Balancer:Metrics:PerDestinationHistograms</c>
    /// true (a histogram per destination however large the cluster): a fresh balancer, the same wrk run.
    /// </summary>
    private static async Task<(double Ms, double FirstMs, long Bytes, int Lines, WrkResult Wrk)> FullHistogramsScrapeAsync(Lab lab, int count, TimeSpan duration)
    {
        var destinations = Destinations(count, lab.Backends, Seed);
        var balancer = await lab.StartRunningBalancerAsync($"scale-{count}-histograms", "RoundRobin", config =>
        {
            destinations(config);
            var settings = config["Balancer"]!.AsObject();
            if (settings["Metrics"] is not JsonObject metrics)
            {
                metrics = new JsonObject();
                settings["Metrics"] = metrics;
            }

            metrics["PerDestinationHistograms"] = true;
        });
        try
        {
            using var management = new HttpClient { BaseAddress = balancer.Management, Timeout = TimeSpan.FromSeconds(60) };
            await UntilAsync(async () => (await ClusterAsync(management, "?state=Up&limit=1"))["matching"]!.GetValue<int>() == count, $"all {count} destinations Up");
            var (wrk, scrapes) = await ScrapeUnderLoadAsync(lab, balancer, management, duration);
            return (LatencyStats.Median(scrapes.Select(s => s.Ms)), scrapes[0].Ms, scrapes.Max(s => s.Bytes), scrapes.Max(s => s.Lines), wrk);
        }
        finally
        {
            lab.Stop(balancer.Target);
        }
    }

    /// <summary>The cluster's destinations: d00000 to d(N-1), the backends in turn, weights 1-1000 from <paramref name="seed"/>; probes every 5 s.</summary>
    private static Action<JsonObject> Destinations(int count, IReadOnlyList<Backend> backends, int seed, HealthSwitch? health = null) => config =>
    {
        var random = new Random(seed);
        var cluster = config["ReverseProxy"]!["Clusters"]!["backends"]!.AsObject();
        var destinations = new JsonObject();
        for (var i = 0; i < count; i++)
        {
            destinations[$"d{i:00000}"] = new JsonObject
            {
                ["Address"] = backends[i % backends.Count].Url.ToString(),
                ["Metadata"] = new JsonObject { ["Weight"] = random.Next(1, 1001).ToString(CultureInfo.InvariantCulture) },
            };
        }

        cluster["Destinations"] = destinations;
        SwitchedHealth(cluster, count, health);
        var active = cluster["HealthCheck"]!["Active"]!.AsObject();
        active["Interval"] = "00:00:05";
        active["Timeout"] = "00:00:02";
    };

    /// <summary>
    /// Writes the edited config beside the file and returns its path, to be moved over the file at once, so the balancer
    /// never reads a half-written one of several MB.
    /// </summary>
    private static string Prepare(RunningBalancer balancer, Action<JsonObject> edit)
    {
        var next = balancer.ConfigPath + ".next";
        File.Copy(balancer.ConfigPath, next, overwrite: true);
        Lab.Rewrite(balancer with { ConfigPath = next }, edit);
        return next;
    }

    /// <summary>
    /// Under wrk, the probing client's windows at rest, then the window of <paramref name="change"/> (from its start until
    /// at least <see cref="Window"/> later and <see cref="Quiet"/> after it is done), with the GC pauses of each. The pauses of
    /// the change window, with the generation, kind and reason of each GC, go to the raw folder as NAME-pauses.txt.
    /// </summary>
    private static async Task<Phase> ChangeUnderLoadAsync(Lab lab, RunningBalancer balancer, string name, Func<Task> change)
    {
        var restLength = Window * RestWindows;
        var loaded = Quiet + Quiet + restLength + Window + LoadAfterWindow;
        await using var pauses = await lab.WatchPausesAsync(balancer.Target.Pid, loaded + LongestChange);
        var load = lab.WrkAsync(balancer.Target.Url, Connections, loaded);
        await Task.Delay(Quiet);
        ProbeWindow[] rest;
        ProbeWindow during;
        double applied;
        List<Metrics.RuntimePause> seen;
        List<(DateTimeOffset Start, double Ms, bool Ok)> requests;
        await using (var probe = SteadyProbe.Start(balancer.Target.Url, ProbeInterval))
        {
            await Task.Delay(Quiet);
            var restStart = DateTimeOffset.UtcNow;
            await Task.Delay(restLength);
            var changeStart = DateTimeOffset.UtcNow;
            var watch = Stopwatch.StartNew();
            await change().WaitAsync(LongestChange);
            applied = watch.Elapsed.TotalSeconds;
            var end = watch.Elapsed + Quiet > Window ? watch.Elapsed + Quiet : Window;
            await Task.Delay(end - watch.Elapsed);
            var changeEnd = DateTimeOffset.UtcNow;
            rest = [.. Enumerable.Range(0, RestWindows).Select(i => probe.Window(restStart + Window * i, restStart + Window * (i + 1)))];
            during = probe.Window(changeStart, changeEnd);
            requests = probe.Requests(changeStart, changeEnd);
            seen = await pauses.StopAsync();
        }

        await load;
        await File.WriteAllLinesAsync(Path.Combine(lab.Directory, $"{name}-pauses.txt"), seen
            .Where(p => p.Start >= during.From && p.Start < during.To)
            .Select(p => string.Create(CultureInfo.InvariantCulture, $"{(p.Start - during.From).TotalMilliseconds:0} ms in: {p.Kind} {p.Ms:0.0} ms {p.Detail}")));
        // The probing client's requests of the change window, each from its start, beside the pauses above: which requests a change made slow, and when.
        await File.WriteAllLinesAsync(Path.Combine(lab.Directory, $"{name}-requests.txt"), requests
            .Select(r => string.Create(CultureInfo.InvariantCulture, $"{(r.Start - during.From).TotalMilliseconds:0.0} ms in ({r.Start.ToUnixTimeMilliseconds()}): {r.Ms:0.00} ms{(r.Ok ? "" : " failed")}")));
        double LongestGc(ProbeWindow w) => seen.Where(p => p.Kind == "gc" && p.Start >= w.From && p.Start < w.To).Select(p => p.Ms).DefaultIfEmpty(0).Max();
        return new Phase(applied, during,
            LatencyStats.Median(rest.Select(w => w.WorstMs)),
            LatencyStats.Median(rest.Select(w => w.P99Ms)),
            LatencyStats.Median(rest.Select(LongestGc)),
            LongestGc(during),
            (int)LatencyStats.Median(rest.Select(w => (double)w.Requests)));
    }

    private static async Task<JsonNode> StatusAsync(HttpClient management, string query) =>
        JsonNode.Parse(await management.GetStringAsync("/status" + query))!;

    private static async Task<JsonNode> ClusterAsync(HttpClient management, string query) =>
        (await StatusAsync(management, query))["clusters"]![0]!;

    private static async Task UntilAsync(Func<Task<bool>> condition, string what, TimeSpan? every = null)
    {
        var deadline = Stopwatch.StartNew();
        while (!await condition())
        {
            if (deadline.Elapsed > SettleTimeout)
            {
                throw new TimeoutException($"Timed out after {SettleTimeout.TotalSeconds:0} s waiting for {what}.");
            }

            await Task.Delay(every ?? TimeSpan.FromMilliseconds(50));
        }
    }

    /// <summary>A process's log file read from where it ends now: which of some phrases appears first in what it writes next.</summary>
    private sealed class LogTail(string path)
    {
        private long _offset = new FileInfo(path).Length;
        private string _partial = string.Empty;

        /// <summary>The first of <paramref name="phrases"/> found in the lines written since the last call, or null.</summary>
        public string? Next(params string[] phrases)
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            file.Seek(_offset, SeekOrigin.Begin);
            using var reader = new StreamReader(file);
            var text = _partial + reader.ReadToEnd();
            _offset = file.Position;
            var end = text.LastIndexOf('\n');
            _partial = end < 0 ? text : text[(end + 1)..];
            var lines = end < 0 ? string.Empty : text[..end];
            return phrases.Select(p => (Phrase: p, At: lines.IndexOf(p, StringComparison.Ordinal))).Where(f => f.At >= 0).OrderBy(f => f.At).Select(f => f.Phrase).FirstOrDefault();
        }
    }

    private static double Mb(long bytes) => bytes / 1024.0 / 1024.0;

    private static double PerDestinationKb(Result r, Result smallest) =>
        r.Count == smallest.Count ? 0 : ((r.RssBytes - smallest.RssBytes) - (r.BareRssBytes - smallest.BareRssBytes)) / 1024.0 / (r.Count - smallest.Count);

    /// <summary>A change under load: how long it took, the probing client's window during it, and the medians of its windows at rest.</summary>
    private sealed record Phase(double AppliedSeconds, ProbeWindow Change, double RestWorstMs, double RestP99Ms, double RestGcMs, double ChangeGcMs, int RestRequests)
    {
        public double StallMs => Change.WorstMs - RestWorstMs;
    }

    private sealed record Result(
        int Count,
        double StartSeconds,
        double SettledSeconds,
        long RssBytes,
        long BareRssBytes,
        long MetricsBytes,
        int MetricsLines,
        double ScrapeMs,
        double FirstScrapeMs,
        WrkResult Load,
        Phase Reload,
        Phase Burst,
        IReadOnlyList<PacedPhase> Paced);
}
