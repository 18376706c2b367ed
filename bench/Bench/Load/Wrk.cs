using System.Globalization;
using Bench.Processes;

namespace Bench.Load;

/// <summary>Runs wrk (Debian's package) for peak load; it inherits the harness's load-generator CPU set unless given CPUs.</summary>
internal static class Wrk
{
    /// <param name="headers">Extra request headers (<c>-H</c>), such as <c>Connection: close</c> for a new connection per request.</param>
    public static async Task<WrkResult> RunAsync(Uri url, int connections, int threads, TimeSpan duration, Action<System.Diagnostics.Process>? started = null, CancellationToken cancellationToken = default, IReadOnlyList<string>? headers = null, string? cpus = null)
    {
        // Given CPUs: wrk runs on them (taskset) instead of the harness's own set.
        var (exit, output, error) = await Command.RunAsync(cpus is null ? "wrk" : "taskset",
        [
            .. cpus is null ? Array.Empty<string>() : ["-c", cpus, "wrk"],
            "-t", Math.Min(threads, connections).ToString(CultureInfo.InvariantCulture),
            "-c", connections.ToString(CultureInfo.InvariantCulture),
            "-d", Math.Max(1, (int)Math.Round(duration.TotalSeconds)).ToString(CultureInfo.InvariantCulture) + "s",
            "--timeout", "10s",
            "--latency",
            .. (headers ?? []).SelectMany(h => new[] { "-H", h }),
            url.ToString(),
        ], cancellationToken, started);
        return exit == 0 ? WrkOutput.Parse(output) : throw new InvalidOperationException($"wrk exited with {exit}: {error}{output}");
    }
}
