using System.Diagnostics;
using System.Globalization;

namespace Bench.Load;

/// <summary>Runs wrk (Debian's package) for peak load; it inherits the harness's load-generator CPU set.</summary>
internal static class Wrk
{
    public static async Task<WrkResult> RunAsync(Uri url, int connections, int threads, TimeSpan duration, CancellationToken cancellationToken = default)
    {
        var info = new ProcessStartInfo("wrk") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in new[]
        {
            "-t", Math.Min(threads, connections).ToString(CultureInfo.InvariantCulture),
            "-c", connections.ToString(CultureInfo.InvariantCulture),
            "-d", Math.Max(1, (int)Math.Round(duration.TotalSeconds)).ToString(CultureInfo.InvariantCulture) + "s",
            "--timeout", "10s",
            "--latency",
            url.ToString(),
        })
        {
            info.ArgumentList.Add(argument);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException("Could not start wrk.");
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var error = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"wrk exited with {process.ExitCode}: {await error}{await output}");
        }

        return WrkOutput.Parse(await output);
    }
}
