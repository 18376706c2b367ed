using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;
using Bench.Processes;

namespace Balancer.Tests.Benchmarks;

/// <summary>
/// Runs <c>bench/run.sh --smoke</c> for real (backends, balancer, bare YARP, NGINX, HAProxy, wrk) and checks
/// that the report has every experiment, a number in every table cell, a verdict for every target and
/// every chart it links. The numbers themselves are not judged: a smoke run is too short to mean anything.
/// </summary>
[Collection(IntegrationCollection.Name)]
public sealed partial class BenchSmokeTests : IDisposable
{
    private readonly string _output = Directory.CreateTempSubdirectory("bench-smoke-").FullName;

    [Fact]
    public async Task RunSh_Smoke_WritesAReportWithNumbersInEveryCell()
    {
        var repository = RepositoryRoot();
        var info = new ProcessStartInfo(Path.Combine(repository, "bench", "run.sh"))
        {
            WorkingDirectory = repository,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        // A longer soak than the smoke default, so a slow reload on a busy machine still leaves time for the restart chore.
        // --no-build: this test's own build made every project the script runs (the reference to BareYarp is for that),
        // and four no-op builds would cost half a minute.
        foreach (var arg in new[] { "--smoke", "--no-build", "--soak-duration", "16", "--out", _output })
        {
            info.ArgumentList.Add(arg);
        }

        // The test host's MSBuild variables would point the script's own `dotnet build` at the wrong SDK pieces.
        foreach (var name in info.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase) || k.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            info.Environment.Remove(name);
        }

        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        // The build and about fifteen experiments of a few seconds each, every proxy started fresh for each.
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        await process.WaitForExitAsync(timeout.Token);
        var log = await output + await error;
        Assert.True(process.ExitCode == 0, log);

        var directory = Assert.Single(Directory.GetDirectories(_output));
        Assert.EndsWith("-smoke", directory, StringComparison.Ordinal);
        var report = File.ReadAllText(Path.Combine(directory, "report.md"));

        foreach (var experiment in new[] { "distribution", "qos", "rates", "heterogeneous", "mixed", "race", "race-tls", "race-unpinned", "warmup", "overhead", "observability", "soak" })
        {
            Assert.Matches(new Regex($"^## {experiment}: (?!FAILED)", RegexOptions.Multiline), report);
        }

        var cells = 0;
        foreach (var row in TableRows(report))
        {
            if (row[0] is "experiment")
            {
                continue;
            }

            if (row.Length == 4 && row[3] is "**met**" or "**not met**")
            {
                Assert.Matches(NumberPattern(), row[2]);
                continue;
            }

            foreach (var cell in row.Skip(1))
            {
                Assert.True(double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out _), $"not a number: '{cell}' in row '{string.Join(" | ", row)}'");
                cells++;
            }
        }

        Assert.True(cells > 150, $"only {cells} numeric cells in the report");
        Assert.Equal(21, Regex.Matches(report, @"^\| [\w-]+ \| .+ \| \*\*(met|not met)\*\* \|$", RegexOptions.Multiline).Count);
        // The shipped tracing's counter was read from its /metrics: it traced, within its cap.
        var traces = Regex.Match(report, @"(\d+) traces started, (\d+) requests left untraced by the cap");
        Assert.True(traces.Success && long.Parse(traces.Groups[1].Value, CultureInfo.InvariantCulture) > 0, $"the capped balancer's traces: '{traces.Value}'");

        // The soak did its chores even in a few seconds: the config rewritten and a backend restarted, each taking effect.
        foreach (var chore in new[] { "config rewrites", "backend restarts" })
        {
            var done = Regex.Match(report, $@"^\| {chore} \| (\d+) \| (\d+) \|", RegexOptions.Multiline);
            Assert.True(done.Success && int.Parse(done.Groups[1].Value, CultureInfo.InvariantCulture) >= 1 && done.Groups[1].Value == done.Groups[2].Value, $"soak {chore}: {done.Value}");
        }

        var charts = Regex.Matches(report, @"!\[[^\]]*\]\(([^)]+\.svg)\)").Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(16, charts.Count);
        foreach (var chart in charts)
        {
            XDocument.Load(Path.Combine(directory, chart));
        }

        // Everything the harness started is gone, and so is anything those processes forked (NGINX's
        // workers): no live process is left in a process group the harness created.
        var started = File.ReadAllLines(Path.Combine(directory, "raw", "started-pids")).Select(int.Parse).ToHashSet();
        Assert.True(started.Count >= 10, $"only {started.Count} processes recorded");
        foreach (var stat in Directory.EnumerateDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), out _)))
        {
            string[]? fields;
            try
            {
                fields = ProcStat.ParseStat(File.ReadAllText(Path.Combine(stat, "stat")));
            }
            catch (IOException)
            {
                continue;
            }

            var pid = int.Parse(Path.GetFileName(stat), CultureInfo.InvariantCulture);
            var alive = fields is not null && fields[0] != "Z";
            Assert.False(alive && (started.Contains(pid) || started.Contains(int.Parse(fields![2], CultureInfo.InvariantCulture))), $"process {pid} from the bench run still runs");
        }
    }

    public void Dispose() => Directory.Delete(_output, recursive: true);

    private static IEnumerable<string[]> TableRows(string markdown)
    {
        foreach (var line in markdown.Split('\n'))
        {
            if (line.StartsWith("| ", StringComparison.Ordinal) && !line.StartsWith("|---", StringComparison.Ordinal))
            {
                var cells = line.Trim().Trim('|').Split(" | ").Select(c => c.Trim()).ToArray();
                if (!line.Contains("---", StringComparison.Ordinal) && !IsHeader(markdown, line))
                {
                    yield return cells;
                }
            }
        }
    }

    /// <summary>A header row is the line right before a |---| separator.</summary>
    private static bool IsHeader(string markdown, string line)
    {
        var index = markdown.IndexOf(line + "\n", StringComparison.Ordinal);
        var next = markdown.IndexOf('\n', index) + 1;
        return markdown.AsSpan(next).StartsWith("|---", StringComparison.Ordinal);
    }

    private static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "LoadBalancer.sln")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException("LoadBalancer.sln not found above " + AppContext.BaseDirectory);
    }

    [GeneratedRegex(@"\d")]
    private static partial Regex NumberPattern();
}
