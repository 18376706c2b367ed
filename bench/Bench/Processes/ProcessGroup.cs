using System.Diagnostics;

namespace Bench.Processes;

/// <summary>
/// Every process the harness starts, each under <c>taskset</c> on its CPU set, with output to a log file.
/// Their PIDs are appended to <c>pidFile</c> as they start, so <c>bench/run.sh</c>'s trap can stop them by
/// PID even when this process is killed before it can clean up.
/// </summary>
internal sealed class ProcessGroup(string directory, string? pidFile = null) : IDisposable
{
    private readonly List<(Process Process, bool OwnGroup)> _started = [];

    /// <summary>Every PID started in this session, kept beside the logs for the record (and for the smoke test).</summary>
    public string StartedPids => Path.Combine(directory, "started-pids");

    public Process Start(string name, string cpus, string file, IEnumerable<string> arguments)
    {
        // exec keeps the PID: sh becomes setsid, then taskset, then the program. setsid gives the program
        // its own process group (PGID = PID), so stopping the group also stops what it forked: NGINX's
        // workers outlive a killed master otherwise.
        var info = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add("exec \"$@\" >>\"$LOG\" 2>&1");
        info.ArgumentList.Add("sh");
        info.ArgumentList.Add("setsid");
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
        Add(process, ownGroup: true);
        return process;
    }

    /// <summary>Records a process started elsewhere (wrk), so it is stopped with the rest if the harness is stopped.</summary>
    public void Track(Process process) => Add(process, ownGroup: false);

    public void Stop(Process process, bool forget)
    {
        bool ownGroup;
        lock (_started)
        {
            var index = _started.FindIndex(p => p.Process == process);
            ownGroup = index >= 0 && _started[index].OwnGroup;
            if (forget && index >= 0)
            {
                _started.RemoveAt(index);
            }
        }

        Terminate(process, ownGroup);
    }

    public void Dispose()
    {
        (Process Process, bool OwnGroup)[] started;
        lock (_started)
        {
            started = [.. _started];
            _started.Clear();
        }

        foreach (var (process, ownGroup) in started)
        {
            try
            {
                Terminate(process, ownGroup);
            }
            catch (InvalidOperationException)
            {
                // Already gone, or disposed once wrk finished.
            }
        }
    }

    private void Add(Process process, bool ownGroup)
    {
        lock (_started)
        {
            _started.Add((process, ownGroup));
        }

        File.AppendAllText(StartedPids, process.Id + Environment.NewLine);
        if (pidFile is not null)
        {
            File.AppendAllText(pidFile, process.Id + Environment.NewLine);
        }
    }

    /// <summary>
    /// SIGTERM (a clean, fast stop: NGINX's master takes its workers down, Kestrel closes), SIGKILL if it is
    /// still there after 10 s. A process started in its own group is signalled as a group, so nothing it
    /// forked outlives it.
    /// </summary>
    private static void Terminate(Process process, bool ownGroup)
    {
        var target = (ownGroup ? "-" : string.Empty) + process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (!process.HasExited)
        {
            Signal(target, "TERM");
            if (!process.WaitForExit(10_000))
            {
                Signal(target, "KILL");
                process.WaitForExit(10_000);
            }
        }

        if (ownGroup)
        {
            // The leader is gone; anything left in its group (a worker) goes too.
            Signal(target, "KILL");
        }

        process.Dispose();
    }

    private static void Signal(string target, string signal) => Command.Run("kill", "-" + signal, "--", target);
}
