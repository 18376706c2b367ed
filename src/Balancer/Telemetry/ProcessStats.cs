using System.Diagnostics;
using System.Globalization;
using System.IO.Enumeration;
using Prometheus;

namespace Balancer.Telemetry;

/// <summary>
/// The process's CPU, memory, thread, descriptor and GC figures under the names and help texts of prometheus-net's
/// <c>DotNetStats</c> (<c>process_*</c>, <c>dotnet_*</c>), read when Prometheus scrapes.
/// </summary>
/// <remarks>
/// <c>DotNetStats</c> counts descriptors with <c>Process.HandleCount</c>, which on Linux lists <c>/proc/self/fd</c> and
/// runs a <c>stat</c> on every entry (each is a symbolic link), and threads with <c>Process.Threads</c>, which reads
/// a file per thread: a third of a scrape's CPU at 3,000 destinations, and growing with every open connection. On Linux
/// these come from <c>/proc/self/stat</c> and from the entries of <c>/proc/self/fdinfo</c> (plain files: counted
/// without a <c>stat</c>); elsewhere from <see cref="Process"/>, as <c>DotNetStats</c> does.
/// </remarks>
internal sealed class ProcessStats
{
    private readonly Process _process = Process.GetCurrentProcess();
    private readonly Lock _updating = new();
    private readonly Counter.Child[] _collections;
    private readonly Counter _cpu;
    private readonly Gauge _virtualMemory;
    private readonly Gauge _workingSet;
    private readonly Gauge _privateMemory;
    private readonly Gauge _openHandles;
    private readonly Gauge _threads;
    private readonly Gauge _totalMemory;

    public ProcessStats(CollectorRegistry registry)
    {
        var factory = Metrics.WithCustomRegistry(registry);
        var collections = factory.CreateCounter("dotnet_collection_count_total", "GC collection count", new CounterConfiguration { LabelNames = ["generation"] });
        _collections = [.. Enumerable.Range(0, GC.MaxGeneration + 1).Select(g => collections.WithLabels(g.ToString(CultureInfo.InvariantCulture)))];
        factory.CreateGauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.")
            .Set(new DateTimeOffset(_process.StartTime.ToUniversalTime()).ToUnixTimeMilliseconds() / 1000.0);
        _cpu = factory.CreateCounter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.");
        _virtualMemory = factory.CreateGauge("process_virtual_memory_bytes", "Virtual memory size in bytes.");
        _workingSet = factory.CreateGauge("process_working_set_bytes", "Process working set");
        _privateMemory = factory.CreateGauge("process_private_memory_bytes", "Process private memory size");
        _openHandles = factory.CreateGauge("process_open_handles", "Number of open handles");
        _threads = factory.CreateGauge("process_num_threads", "Total number of threads");
        _totalMemory = factory.CreateGauge("dotnet_total_memory_bytes", "Total known allocated memory");
        registry.AddBeforeCollectCallback(Update);
    }

    private void Update()
    {
        lock (_updating)
        {
            for (var generation = 0; generation < _collections.Length; generation++)
            {
                _collections[generation].IncTo(GC.CollectionCount(generation));
            }

            _totalMemory.Set(GC.GetTotalMemory(forceFullCollection: false));
            _cpu.IncTo(Environment.CpuUsage.TotalTime.TotalSeconds);
            if (OperatingSystem.IsLinux() && ReadProc())
            {
                return;
            }

            _process.Refresh();
            _virtualMemory.Set(_process.VirtualMemorySize64);
            _workingSet.Set(_process.WorkingSet64);
            _privateMemory.Set(_process.PrivateMemorySize64);
            _openHandles.Set(_process.HandleCount);
            _threads.Set(_process.Threads.Count);
        }
    }

    /// <summary>The Linux figures, as <see cref="Process"/> reads them there; false when <c>/proc</c> cannot be read.</summary>
    private bool ReadProc()
    {
        try
        {
            // After the command name, which may hold spaces and parentheses: state is field 3, num_threads 20, vsize 23, rss 24.
            var stat = File.ReadAllText("/proc/self/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            _threads.Set(long.Parse(fields[20 - 3], CultureInfo.InvariantCulture));
            _virtualMemory.Set(long.Parse(fields[23 - 3], CultureInfo.InvariantCulture));
            _workingSet.Set(long.Parse(fields[24 - 3], CultureInfo.InvariantCulture) * Environment.SystemPageSize);
            _privateMemory.Set(StatusKilobytes("VmData:") * 1024);
            _openHandles.Set(OpenDescriptors());
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return false;
        }
    }

    private static long StatusKilobytes(string key)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith(key, StringComparison.Ordinal))
            {
                return long.Parse(line.AsSpan(key.Length).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture);
            }
        }

        return 0;
    }

    /// <summary>One entry per open descriptor; no name is made and nothing is stat'ed.</summary>
    private static int OpenDescriptors()
    {
        var count = 0;
        foreach (var _ in new FileSystemEnumerable<bool>("/proc/self/fdinfo", static (ref FileSystemEntry _) => true))
        {
            count++;
        }

        // The enumeration's own descriptor of the directory was open meanwhile.
        return count - 1;
    }
}
