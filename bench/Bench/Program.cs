using System.Diagnostics;
using Bench.Experiments;
using Bench.Processes;
using Bench.Reporting;

namespace Bench;

/// <summary>
/// The benchmark harness behind bench/run.sh: runs the chosen experiments against processes it starts on
/// loopback and writes report.md with SVG charts. Exit 0 when every experiment produced its numbers.
/// </summary>
public static class Program
{
    private static readonly Dictionary<string, Func<Lab, Report, Task>> Experiments = new()
    {
        ["distribution"] = Distribution.RunAsync,
        ["qos"] = Qos.RunAsync,
        ["rates"] = Rates.RunAsync,
        ["heterogeneous"] = Heterogeneous.RunAsync,
        ["mixed"] = Mixed.RunAsync,
        ["race"] = Race.RunAsync,
        ["race-tls"] = RaceTls.RunAsync,
        ["race-unpinned"] = RaceUnpinned.RunAsync,
        ["warmup"] = Warmup.RunAsync,
        ["overhead"] = Overhead.RunAsync,
        ["observability"] = Observability.RunAsync,
        ["soak"] = Soak.RunAsync,
        ["scale"] = Scale.RunAsync,
    };

    public static async Task<int> Main(string[] args)
    {
        Options options;
        try
        {
            options = Options.Parse(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            return 2;
        }

        var started = DateTime.UtcNow;
        var loadBefore = ProcStat.LoadAverage();
        var directory = Path.GetFullPath(Path.Combine(options.Output, ReportName(options)));
        // The previous run's logs and configs would mix with this run's.
        MarkdownRenderer.DeleteRaw(directory);
        using var lab = new Lab(options, Path.Combine(directory, "raw"));
        AppDomain.CurrentDomain.ProcessExit += (_, _) => lab.Dispose();
        Console.CancelKeyPress += (_, e) =>
        {
            lab.Dispose();
            e.Cancel = false;
        };

        var report = new Report($"Benchmark report {started:yyyy-MM-dd HH:mm} UTC{(options.Smoke ? " (SMOKE)" : string.Empty)}");
        var failures = 0;
        Console.Out.WriteLine($"Starting backends (logs and configs in {lab.Directory})");
        await lab.StartBackendsAsync();
        foreach (var experiment in options.Experiments)
        {
            Console.Out.WriteLine($"[{DateTime.UtcNow:HH:mm:ss}] {experiment}...");
            var watch = Stopwatch.StartNew();
            try
            {
                await Experiments[experiment](lab, report);
            }
            catch (Exception e)
            {
                // One experiment failing must not lose the others' results; it is reported and fails the run.
                failures++;
                report.Add($"{experiment}: FAILED").Text("The experiment did not complete: " + e.Message.ReplaceLineEndings(" "));
                Console.Error.WriteLine($"{experiment} failed: {e}");
            }

            Console.Out.WriteLine($"[{DateTime.UtcNow:HH:mm:ss}] {experiment} done in {watch.Elapsed.TotalSeconds:0} s");
        }

        report.Preamble.AddRange(Preamble(options, started, DateTime.UtcNow));
        report.Preamble.Add($"- Machine load (1-minute load average from /proc/loadavg): {loadBefore:0.00} at the start (just after the build), {ProcStat.LoadAverage():0.00} at the end. On a quiet machine the harness's own processes account for all of it.");
        var path = MarkdownRenderer.Write(report, directory);
        Console.Out.WriteLine($"Report: {path}");
        return failures == 0 ? 0 : 1;
    }

    /// <summary>
    /// One folder per experiment set, so a new run replaces the previous report of the same experiments
    /// instead of piling up beside it (git history keeps the old ones): bench/results/full for the default
    /// set, the experiments' names for a subset (race-qos, soak), with -aot appended when the Native AOT build runs
    /// too and -smoke for a smoke run.
    /// </summary>
    internal static string ReportName(Options options)
    {
        var name = options.Experiments.SequenceEqual(options.DefaultSet) ? "full" : string.Join('-', options.Experiments);
        name = options.AotExecutable is null ? name : name + "-aot";
        return options.Smoke ? name + "-smoke" : name;
    }

    private static IEnumerable<string> Preamble(Options options, DateTime started, DateTime finished)
    {
        if (options.Smoke)
        {
            yield return "> **Smoke run**: a few seconds per experiment to check the harness works. The numbers are not measurements; do not quote them.";
            yield return string.Empty;
        }

        yield return $"- Run: {started:yyyy-MM-dd HH:mm:ss} to {finished:HH:mm:ss} UTC, experiments: {string.Join(", ", options.Experiments)}; command: `{Environment.GetEnvironmentVariable("BENCH_COMMAND") ?? "Bench " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1))}`";
        yield return $"- Commit: `{Tool("git", "-C", options.Repository, "rev-parse", "--short", "HEAD")}`{(Tool("git", "-C", options.Repository, "status", "--porcelain").Length > 0 ? " (with uncommitted changes)" : string.Empty)}";
        yield return $"- Machine: {CpuCount()} CPUs ({CpuModel()}), Linux {Tool("uname", "-r")}, .NET {Environment.Version}";
        yield return $"- Tools: {Tool("wrk", "--version").Split('\n')[0].Split(" [")[0]}, {Tool("h2load", "--version")}, {Tool("nginx", "-v")}, {Tool("haproxy", "-v").Split('\n')[0]}, {Tool("openssl", "version")}";
        yield return $"- CPU layout (taskset): load generators (wrk, the harness's client) on CPU {options.LoadCpus}; proxies (balancer, bare YARP, NGINX, HAProxy) on CPU {options.ProxyCpus}; the three backends on CPU {options.BackendCpus}. Every proxy gets the same set; NGINX workers and HAProxy threads = {options.ProxyCoreCount}.";
        yield return $"- Timed runs: {options.RunDuration.TotalSeconds:0.#} s, {options.RepeatedRuns} run(s) per proxy; " +
            $"overhead: {options.OverheadRunDuration.TotalSeconds:0.#} s, {options.OverheadRuns} rounds; mixed: {options.MixedRunDuration.TotalSeconds:0.#} s" +
            (options.Experiments.Contains("soak") ? $"; soak: {options.SoakRunDuration.TotalSeconds:0.#} s." : ".");
    }

    /// <summary>All the machine's CPUs; Environment.ProcessorCount sees only the harness's own taskset.</summary>
    private static int CpuCount() => File.ReadLines("/proc/cpuinfo").Count(l => l.StartsWith("processor", StringComparison.Ordinal));

    private static string CpuModel()
    {
        foreach (var line in File.ReadLines("/proc/cpuinfo"))
        {
            if (line.StartsWith("model name", StringComparison.Ordinal))
            {
                return line[(line.IndexOf(':') + 1)..].Trim();
            }
        }

        return "unknown model";
    }

    /// <summary>A tool's one-line answer for the report's header (stdout, or stderr where the tool prints there).</summary>
    private static string Tool(string file, params string[] args)
    {
        try
        {
            var (_, output, error) = Command.Run(file, args);
            var text = output.Trim().Length > 0 ? output.Trim() : error.Trim();
            return text.Replace("nginx version: ", string.Empty, StringComparison.Ordinal);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return file + " (not found)";
        }
    }
}
