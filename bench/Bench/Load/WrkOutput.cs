using System.Globalization;
using System.Text.RegularExpressions;

namespace Bench.Load;

/// <summary>What one wrk run reports (wrk 4.x with <c>--latency</c>), latencies in milliseconds.</summary>
internal sealed record WrkResult(
    long Requests,
    double Seconds,
    double RequestsPerSecond,
    double TransferBytesPerSecond,
    double MeanMs,
    double P50Ms,
    double P75Ms,
    double P90Ms,
    double P99Ms,
    double MaxMs,
    long SocketErrors,
    long Non2xx)
{
    /// <summary>Requests that did not get a 2xx/3xx answer, as a share of all requests, in percent.</summary>
    public double FailedPercent => Requests == 0 ? 100 : 100.0 * (SocketErrors + Non2xx) / Requests;
}

/// <summary>Parses wrk's text output; wrk has no machine-readable mode without a Lua script.</summary>
internal static partial class WrkOutput
{
    public static WrkResult Parse(string text)
    {
        var latency = LatencyLine().Match(text);
        var total = TotalLine().Match(text);
        var rps = RpsLine().Match(text);
        var transfer = TransferLine().Match(text);
        if (!latency.Success || !total.Success || !rps.Success || !transfer.Success)
        {
            throw new FormatException("Not wrk output (no Latency, requests, Requests/sec or Transfer/sec line):" + Environment.NewLine + text);
        }

        var distribution = new Dictionary<int, double>();
        foreach (Match m in DistributionLine().Matches(text))
        {
            distribution[int.Parse(m.Groups["p"].Value, CultureInfo.InvariantCulture)] = Duration(m.Groups["v"].Value, m.Groups["u"].Value);
        }

        if (!distribution.ContainsKey(50) || !distribution.ContainsKey(99))
        {
            throw new FormatException("wrk output has no latency distribution; run wrk with --latency.");
        }

        long socketErrors = 0;
        var socket = SocketErrorsLine().Match(text);
        if (socket.Success)
        {
            foreach (var group in new[] { "connect", "read", "write", "timeout" })
            {
                socketErrors += long.Parse(socket.Groups[group].Value, CultureInfo.InvariantCulture);
            }
        }

        var non2xx = Non2xxLine().Match(text);
        return new WrkResult(
            Requests: long.Parse(total.Groups["n"].Value, CultureInfo.InvariantCulture),
            Seconds: Duration(total.Groups["d"].Value, total.Groups["u"].Value) / 1000,
            RequestsPerSecond: Number(rps.Groups["v"].Value),
            TransferBytesPerSecond: Bytes(transfer.Groups["v"].Value, transfer.Groups["u"].Value),
            MeanMs: Duration(latency.Groups["avg"].Value, latency.Groups["avgu"].Value),
            P50Ms: distribution[50],
            P75Ms: distribution.GetValueOrDefault(75, double.NaN),
            P90Ms: distribution.GetValueOrDefault(90, double.NaN),
            P99Ms: distribution[99],
            MaxMs: Duration(latency.Groups["max"].Value, latency.Groups["maxu"].Value),
            SocketErrors: socketErrors,
            Non2xx: non2xx.Success ? long.Parse(non2xx.Groups["n"].Value, CultureInfo.InvariantCulture) : 0);
    }

    /// <summary>wrk prints durations as 812.00us, 1.23ms, 2.00s, 1.50m or 1.00h.</summary>
    private static double Duration(string value, string unit) => Number(value) * unit switch
    {
        "us" => 0.001,
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => throw new FormatException($"Unknown wrk time unit '{unit}'."),
    };

    private static double Bytes(string value, string unit) => Number(value) * unit switch
    {
        "B" => 1,
        "KB" => 1024,
        "MB" => 1024 * 1024,
        "GB" => 1024.0 * 1024 * 1024,
        "TB" => 1024.0 * 1024 * 1024 * 1024,
        _ => throw new FormatException($"Unknown wrk size unit '{unit}'."),
    };

    private static double Number(string value) => double.Parse(value, NumberStyles.Float, CultureInfo.InvariantCulture);

    [GeneratedRegex(@"^\s*Latency\s+(?<avg>[\d.]+)(?<avgu>us|ms|s|m|h)\s+[\d.]+(?:us|ms|s|m|h)\s+(?<max>[\d.]+)(?<maxu>us|ms|s|m|h)", RegexOptions.Multiline)]
    private static partial Regex LatencyLine();

    [GeneratedRegex(@"^\s*(?<p>\d+)%\s+(?<v>[\d.]+)(?<u>us|ms|s|m|h)\s*$", RegexOptions.Multiline)]
    private static partial Regex DistributionLine();

    [GeneratedRegex(@"^\s*(?<n>\d+) requests in (?<d>[\d.]+)(?<u>us|ms|s|m|h),", RegexOptions.Multiline)]
    private static partial Regex TotalLine();

    [GeneratedRegex(@"^Requests/sec:\s+(?<v>[\d.]+)", RegexOptions.Multiline)]
    private static partial Regex RpsLine();

    [GeneratedRegex(@"^Transfer/sec:\s+(?<v>[\d.]+)(?<u>B|KB|MB|GB|TB)", RegexOptions.Multiline)]
    private static partial Regex TransferLine();

    [GeneratedRegex(@"Socket errors: connect (?<connect>\d+), read (?<read>\d+), write (?<write>\d+), timeout (?<timeout>\d+)")]
    private static partial Regex SocketErrorsLine();

    [GeneratedRegex(@"Non-2xx or 3xx responses: (?<n>\d+)")]
    private static partial Regex Non2xxLine();
}
