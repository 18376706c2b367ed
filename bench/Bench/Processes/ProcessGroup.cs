using System.Diagnostics;

namespace Bench.Processes;

/// <summary>
/// Every process the harness starts, each under <c>taskset</c> on its CPU set, with output to a log file.
/// Their PIDs are appended to <c>pidFile</c> as they start, so <c>bench/run.sh</c>'s trap can stop them by
/// PID even when this process is killed before it can clean up.
/// </summary>
internal sealed class ProcessGroup(string directory, string? pidFile = null) : IDisposable
{
    private readonly List<Process> _started = [];

    /// <summary>Every PID started in this session, kept beside the logs for the record (and for the smoke test).</summary>
    public string StartedPids => Path.Combine(directory, "started-pids");

    public Process Start(string name, string cpus, string file, IEnumerable<string> arguments)
    {
        // exec keeps the PID: sh becomes taskset, which becomes the program.
        var info = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add("exec \"$@\" >>\"$LOG\" 2>&1");
        info.ArgumentList.Add("sh");
        info.ArgumentList.Add("taskset");
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(cpus);
        info.ArgumentList.Add(file);
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["LOG"] = Path.Combine(directory, name + ".log");

        // The race measures the balancer with its tracing exporter off, whatever the operator's shell exports.
        foreach (var key in info.Environment.Keys.Where(k => k.StartsWith("OTEL_", StringComparison.Ordinal)).ToList())
        {
            info.Environment.Remove(key);
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {file}.");
        Track(process);

        return process;
    }

    /// <summary>Records a process started elsewhere (wrk), so it is stopped with the rest if the harness is stopped.</summary>
    public void Track(Process process)
    {
        lock (_started)
        {
            _started.Add(process);
        }

        File.AppendAllText(StartedPids, process.Id + Environment.NewLine);
        if (pidFile is not null)
        {
            File.AppendAllText(pidFile, process.Id + Environment.NewLine);
        }
    }

    public static void Stop(Process process)
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(10_000);
        }

        process.Dispose();
    }

    public void Stop(Process process, bool forget)
    {
        if (forget)
        {
            lock (_started)
            {
                _started.Remove(process);
            }
        }

        Stop(process);
    }

    public void Dispose()
    {
        Process[] started;
        lock (_started)
        {
            started = [.. _started];
            _started.Clear();
        }

        foreach (var process in started)
        {
            try
            {
                Stop(process);
            }
            catch (InvalidOperationException)
            {
                // Already gone, or disposed once wrk finished.
            }
        }
    }
}
