using System.Globalization;

namespace Bench.Processes;

/// <summary>
/// CPU time and resident memory of a process and its descendants (NGINX's workers are children of its
/// master), read from /proc as <c>top</c> and <c>docker stats</c> do.
/// </summary>
internal static class ProcStat
{
    private static readonly double TicksPerSecond = ClockTicks();

    /// <summary>User plus system CPU seconds used so far by <paramref name="pid"/> and its descendants.</summary>
    public static double CpuSeconds(int pid)
    {
        long ticks = 0;
        foreach (var member in Tree(pid))
        {
            var fields = StatFields(member);
            if (fields is not null)
            {
                // Fields after the command: state is [0], utime is field 14 => [11], stime [12].
                ticks += long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            }
        }

        return ticks / TicksPerSecond;
    }

    /// <summary>
    /// CPU seconds of this process's children that have exited and been waited for (cutime + cstime): how
    /// the harness measures wrk's own CPU use, to tell when the load generator rather than the proxy was the limit.
    /// </summary>
    public static double ReapedChildrenCpuSeconds()
    {
        var fields = StatFields(Environment.ProcessId) ?? throw new InvalidOperationException("Cannot read /proc/self/stat.");
        return (long.Parse(fields[13], CultureInfo.InvariantCulture) + long.Parse(fields[14], CultureInfo.InvariantCulture)) / TicksPerSecond;
    }

    /// <summary>The 1-minute load average (/proc/loadavg), to show in the report how busy the machine was.</summary>
    public static double LoadAverage() =>
        double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture);

    /// <summary>Resident set size in bytes of <paramref name="pid"/> and its descendants (VmRSS).</summary>
    public static long RssBytes(int pid)
    {
        long total = 0;
        foreach (var member in Tree(pid))
        {
            try
            {
                foreach (var line in File.ReadLines($"/proc/{member}/status"))
                {
                    if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    {
                        total += ParseKb(line) * 1024;
                        break;
                    }
                }
            }
            catch (IOException)
            {
                // Exited between listing and reading.
            }
        }

        return total;
    }

    /// <summary>"VmRSS:	   12345 kB" -> 12345.</summary>
    internal static long ParseKb(string line)
    {
        var digits = line.AsSpan(line.IndexOf(':') + 1).Trim();
        var space = digits.IndexOf(' ');
        return long.Parse(space < 0 ? digits : digits[..space], CultureInfo.InvariantCulture);
    }

    /// <summary>The fields of /proc/PID/stat after "(comm)", which may itself contain spaces and parentheses.</summary>
    internal static string[]? ParseStat(string text)
    {
        var close = text.LastIndexOf(')');
        return close < 0 ? null : text[(close + 2)..].Split(' ');
    }

    private static string[]? StatFields(int pid)
    {
        try
        {
            return ParseStat(File.ReadAllText($"/proc/{pid}/stat"));
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static List<int> Tree(int root)
    {
        var parents = new Dictionary<int, int>();
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(directory), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                var fields = StatFields(pid);
                if (fields is not null)
                {
                    parents[pid] = int.Parse(fields[1], CultureInfo.InvariantCulture);
                }
            }
        }

        var tree = new List<int> { root };
        for (var i = 0; i < tree.Count; i++)
        {
            foreach (var (pid, parent) in parents)
            {
                if (parent == tree[i])
                {
                    tree.Add(pid);
                }
            }
        }

        return tree;
    }

    private static double ClockTicks()
    {
        // USER_HZ is 100 on every Linux architecture .NET runs on; getconf confirms it where available.
        try
        {
            return double.Parse(Command.Run("getconf", "CLK_TCK").Output.Trim(), CultureInfo.InvariantCulture);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return 100;
        }
    }
}

/// <summary>Samples a process tree's CPU % (of one core, as docker stats shows it) and RSS every second.</summary>
internal sealed class ResourceSampler : IAsyncDisposable
{
    private readonly int _pid;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly List<ResourceSample> _samples = [];

    public ResourceSampler(int pid, TimeSpan interval)
    {
        _pid = pid;
        _loop = RunAsync(interval);
    }

    public IReadOnlyList<ResourceSample> Samples => _samples;

    public async Task<IReadOnlyList<ResourceSample>> StopAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        return _samples;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested)
        {
            await StopAsync();
        }

        _stop.Dispose();
    }

    private async Task RunAsync(TimeSpan interval)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var lastCpu = ProcStat.CpuSeconds(_pid);
        var lastTime = started;
        using var timer = new PeriodicTimer(interval);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token))
            {
                var now = System.Diagnostics.Stopwatch.GetTimestamp();
                var cpu = ProcStat.CpuSeconds(_pid);
                var wall = System.Diagnostics.Stopwatch.GetElapsedTime(lastTime, now).TotalSeconds;
                _samples.Add(new ResourceSample(
                    System.Diagnostics.Stopwatch.GetElapsedTime(started, now).TotalSeconds,
                    100 * (cpu - lastCpu) / wall,
                    ProcStat.RssBytes(_pid)));
                lastCpu = cpu;
                lastTime = now;
            }
        }
        catch (OperationCanceledException)
        {
            // Stopped.
        }
    }
}

/// <summary>One sample: seconds since sampling began, CPU % of one core over the last interval, RSS bytes.</summary>
internal sealed record ResourceSample(double AtSeconds, double CpuPercent, long RssBytes);
