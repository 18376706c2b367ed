using System.Globalization;
using System.Text.RegularExpressions;
using Bench.Processes;
using Bench.Stats;

namespace Bench.Load;

/// <summary>
/// Runs h2load (Debian's nghttp2-client) for HTTP/2 load over TLS. Its summary has no percentiles, so each
/// run writes h2load's per-request log (<c>--log-file</c>) and the latencies come from there.
/// </summary>
internal static partial class H2load
{
    /// <param name="warmUp">
    /// h2load's own warm-up before the measured duration (whole seconds; zero for none). The proxy's CPU is read
    /// around the whole process, so a measured run has none: its connections are set up inside the duration, as wrk's are.
    /// </param>
    public static async Task<WrkResult> RunAsync(Uri url, int connections, int streams, int threads, TimeSpan duration, TimeSpan warmUp, string logDirectory, Action<System.Diagnostics.Process>? started = null)
    {
        var log = Path.Combine(logDirectory, $"h2load-{Guid.NewGuid():N}.tsv");
        try
        {
            var (exit, output, error) = await Command.RunAsync("h2load",
            [
                "-t", Math.Min(threads, connections).ToString(CultureInfo.InvariantCulture),
                "-c", connections.ToString(CultureInfo.InvariantCulture),
                "-m", streams.ToString(CultureInfo.InvariantCulture),
                "-D", Math.Max(1, (int)Math.Round(duration.TotalSeconds)).ToString(CultureInfo.InvariantCulture),
                "--warm-up-time=" + ((int)Math.Round(warmUp.TotalSeconds)).ToString(CultureInfo.InvariantCulture),
                "--log-file=" + log,
                url.ToString(),
            ], started: started);
            if (exit != 0)
            {
                throw new InvalidOperationException($"h2load exited with {exit}: {error}{output}");
            }

            return Parse(output, File.Exists(log) ? File.ReadLines(log) : []);
        }
        finally
        {
            // Tens of megabytes a run at full speed; the summary is what the report keeps.
            File.Delete(log);
        }
    }

    /// <summary>
    /// h2load's summary plus its per-request log (tab-separated: start time in µs, status or -1 for a failed
    /// stream, µs to the end of the response), as a <see cref="WrkResult"/> so runs of both tools compare.
    /// </summary>
    internal static WrkResult Parse(string summary, IEnumerable<string> log)
    {
        var finished = FinishedLine().Match(summary);
        var requests = RequestsLine().Match(summary);
        var codes = StatusLine().Match(summary);
        if (!finished.Success || !requests.Success || !codes.Success)
        {
            throw new FormatException("Not h2load output (no finished, requests or status codes line):" + Environment.NewLine + summary);
        }

        // h2load falls back to HTTP/1.1 when the server offers no h2 by ALPN; that would not be the HTTP/2 figure.
        var protocol = ProtocolLine().Match(summary);
        if (!protocol.Success || protocol.Groups["p"].Value != "h2")
        {
            throw new InvalidOperationException($"h2load did not negotiate h2 (application protocol: '{protocol.Groups["p"].Value}').");
        }

        var latencies = new List<double>();
        foreach (var line in log)
        {
            var fields = line.Split('\t');
            if (fields.Length >= 3 && fields[1] != "-1")
            {
                latencies.Add(double.Parse(fields[2], CultureInfo.InvariantCulture) / 1000);
            }
        }

        // No completed request has no latencies: NaN, which the report refuses to print as a number.
        var sorted = latencies.Count == 0 ? [double.NaN] : latencies.ToArray();
        Array.Sort(sorted);
        long Count(Match m, string group) => long.Parse(m.Groups[group].Value, CultureInfo.InvariantCulture);
        return new WrkResult(
            Requests: Count(requests, "done"),
            Seconds: Duration(finished.Groups["d"].Value, finished.Groups["u"].Value),
            RequestsPerSecond: Number(finished.Groups["rps"].Value),
            TransferBytesPerSecond: Number(finished.Groups["b"].Value) * finished.Groups["bu"].Value switch
            {
                "B" => 1,
                "KB" => 1024,
                "MB" => 1024 * 1024,
                "GB" => 1024.0 * 1024 * 1024,
                var unit => throw new FormatException($"Unknown h2load size unit '{unit}'."),
            },
            MeanMs: sorted.Average(),
            P50Ms: LatencyStats.Percentile(sorted, 50),
            P75Ms: LatencyStats.Percentile(sorted, 75),
            P90Ms: LatencyStats.Percentile(sorted, 90),
            P99Ms: LatencyStats.Percentile(sorted, 99),
            MaxMs: sorted[^1],
            // h2load counts 4xx and 5xx answers as failed too; wrk keeps them apart, and so does the result.
            SocketErrors: Math.Max(0, Count(requests, "failed") - Count(codes, "s4") - Count(codes, "s5")),
            Non2xx: Count(codes, "s4") + Count(codes, "s5"));
    }

    private static double Duration(string value, string unit) => Number(value) * unit switch
    {
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1,
        _ => throw new FormatException($"Unknown h2load time unit '{unit}'."),
    };

    private static double Number(string value) => double.Parse(value, NumberStyles.Float, CultureInfo.InvariantCulture);

    [GeneratedRegex(@"^finished in (?<d>[\d.]+)(?<u>us|ms|s), (?<rps>[\d.]+) req/s, (?<b>[\d.]+)(?<bu>B|KB|MB|GB)/s", RegexOptions.Multiline)]
    private static partial Regex FinishedLine();

    [GeneratedRegex(@"^requests: \d+ total, \d+ started, (?<done>\d+) done, \d+ succeeded, (?<failed>\d+) failed, \d+ errored, \d+ timeout", RegexOptions.Multiline)]
    private static partial Regex RequestsLine();

    [GeneratedRegex(@"^status codes: \d+ 2xx, \d+ 3xx, (?<s4>\d+) 4xx, (?<s5>\d+) 5xx", RegexOptions.Multiline)]
    private static partial Regex StatusLine();

    [GeneratedRegex(@"^Application protocol: (?<p>\S+)", RegexOptions.Multiline)]
    private static partial Regex ProtocolLine();
}
