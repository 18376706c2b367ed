using System.Diagnostics;
using System.Globalization;

namespace Bench.Metrics;

/// <summary>What stopped a .NET process's threads for a while: a GC pause (<c>gc</c>), a lock wait (<c>lock</c>), the thread pool starved (<c>starved</c>).</summary>
internal sealed record RuntimePause(string Kind, DateTimeOffset Start, double Ms, string Detail)
{
    public DateTimeOffset End => Start + TimeSpan.FromMilliseconds(Ms);

    /// <summary>bench/PauseWatch's lines, "kind|unix-ms|ms|detail"; anything else is skipped.</summary>
    public static List<RuntimePause> Parse(IEnumerable<string> lines)
    {
        List<RuntimePause> pauses = [];
        foreach (var line in lines)
        {
            var parts = line.Split('|', 4);
            if (parts.Length == 4
                && double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var start)
                && double.TryParse(parts[2], NumberStyles.Float, CultureInfo.InvariantCulture, out var ms))
            {
                pauses.Add(new RuntimePause(parts[0], DateTimeOffset.FromUnixTimeMilliseconds(0) + TimeSpan.FromMilliseconds(start), ms, parts[3]));
            }
        }

        return pauses;
    }
}

/// <summary>
/// bench/PauseWatch attached to a process over EventPipe for a while: the GC pauses, lock waits and thread-pool
/// starvation it saw, with their wall-clock times, so that a client's slow requests can be laid against them.
/// </summary>
internal sealed class RuntimePauseWatch : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Task<List<string>> _lines;

    private RuntimePauseWatch(Process process, Task<List<string>> lines)
    {
        _process = process;
        _lines = lines;
    }

    /// <summary>Starts watching <paramref name="pid"/> (at most <paramref name="longest"/>) and returns once the session is open.</summary>
    public static async Task<RuntimePauseWatch> StartAsync(string repository, string configuration, int pid, TimeSpan longest, string? cpus, Action<Process> started)
    {
        var dll = Path.GetFullPath(Path.Combine(repository, "bench", "PauseWatch", "bin", configuration, "net10.0", "PauseWatch.dll"));
        if (!File.Exists(dll))
        {
            throw new FileNotFoundException($"{dll} is missing; build bench/PauseWatch (bench/run.sh does).", dll);
        }

        var info = new ProcessStartInfo(cpus is null ? "dotnet" : "taskset") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in (string[])[.. cpus is null ? Array.Empty<string>() : ["-c", cpus, "dotnet"], dll, pid.ToString(CultureInfo.InvariantCulture),
                     longest.TotalSeconds.ToString("0", CultureInfo.InvariantCulture)])
        {
            info.ArgumentList.Add(argument);
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException("Could not start bench/PauseWatch.");
        started(process);
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var lines = Task.Run(async () =>
        {
            List<string> read = [];
            while (await process.StandardOutput.ReadLineAsync() is { } line)
            {
                if (line == "ready")
                {
                    ready.TrySetResult();
                }
                else
                {
                    read.Add(line);
                }
            }

            ready.TrySetException(new InvalidOperationException($"bench/PauseWatch ended before it attached to {pid}: {await process.StandardError.ReadToEndAsync()}"));
            return read;
        });
        await ready.Task.WaitAsync(TimeSpan.FromSeconds(60));
        return new RuntimePauseWatch(process, lines);
    }

    /// <summary>Stops watching; what was seen until now.</summary>
    public async Task<List<RuntimePause>> StopAsync()
    {
        if (!_process.HasExited)
        {
            // The tool flushes every line as it sees it: nothing is lost by ending it.
            _process.Kill();
        }

        await _process.WaitForExitAsync();
        return RuntimePause.Parse(await _lines);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
        }

        await _process.WaitForExitAsync();
        _process.Dispose();
    }
}
