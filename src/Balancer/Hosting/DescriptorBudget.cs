using System.Runtime.InteropServices;

namespace Balancer.Hosting;

/// <summary>
/// How many proxy connections fit the process's open-file limit, worked out once at start-up the way
/// HAProxy derives its <c>maxconn</c> from <c>ulimit -n</c>: every proxy connection may hold two
/// descriptors (the client's socket and the backend connection its request needs), and the rest is kept
/// for what the runtime already has open, what it opens later (threads, assemblies, files), the management
/// listener and the clients being turned away.
/// </summary>
/// <remarks>
/// Running out of descriptors is worse than refusing clients: the .NET runtime cannot start a thread
/// without one and aborts the process ("Out of memory.", exit 134), and backend connects fail in a way
/// that looks like the backends' fault.
/// </remarks>
internal sealed record DescriptorBudget(long SoftLimit, long HardLimit, int InUseAtStart, int Reserved, int ProxyConnections)
{
    /// <summary>Descriptors the runtime opens after start-up: thread pool threads, lazily loaded assemblies, config and log files.</summary>
    public const int RuntimeHeadroom = 128;

    /// <summary>Connections the management listener takes at once; its descriptors are kept out of the proxy's share.</summary>
    public const int ManagementConnections = 64;

    /// <summary>Turned-away proxy clients whose socket stays open while they read the 503 (see <see cref="ProxyConnections"/>).</summary>
    public const int LingeringRejections = 64;

    /// <summary>Spare descriptors held for the moment the limit is reached anyway (see <see cref="DescriptorReserve"/>).</summary>
    public const int Spares = DescriptorReserve.Size;

    private const int RlimitNofile = 7;

    /// <summary>Reads the limit (raising the soft limit to the hard one if the runtime has not) and sizes the proxy share.</summary>
    public static DescriptorBudget Measure()
    {
        var (soft, hard) = RaiseToHardLimit();
        var inUse = CountOpen();
        return Compute(soft, hard, inUse);
    }

    public static DescriptorBudget Compute(long soft, long hard, int inUse)
    {
        var reserved = inUse + RuntimeHeadroom + ManagementConnections + LingeringRejections + Spares;
        var proxy = Math.Max(1, (soft - reserved) / 2);
        return new DescriptorBudget(soft, hard, inUse, reserved, (int)Math.Min(proxy, int.MaxValue));
    }

    /// <summary>Descriptors an explicit proxy connection limit needs at most.</summary>
    public long Needed(int proxyConnections) => Reserved + 2L * proxyConnections;

    private static (long Soft, long Hard) RaiseToHardLimit()
    {
        if (!OperatingSystem.IsLinux() || getrlimit(RlimitNofile, out var limit) != 0)
        {
            return (long.MaxValue, long.MaxValue);
        }

        // The .NET runtime raises the soft limit to the hard one when it starts (so does NGINX's
        // worker_rlimit_nofile); done here too in case a host does not.
        if (limit.Current < limit.Maximum)
        {
            var raised = limit with { Current = limit.Maximum };
            if (setrlimit(RlimitNofile, in raised) == 0)
            {
                limit = raised;
            }
        }

        return (Clamp(limit.Current), Clamp(limit.Maximum));
    }

    private static long Clamp(ulong value) => value > long.MaxValue ? long.MaxValue : (long)value;

    private static int CountOpen()
    {
        try
        {
            return Directory.GetFileSystemEntries("/proc/self/fd").Length;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct RLimit(ulong Current, ulong Maximum);

#pragma warning disable SYSLIB1054 // LibraryImport would need unsafe code enabled for the whole assembly, for two calls at start-up.
    [DllImport("libc", SetLastError = true)]
    private static extern int getrlimit(int resource, out RLimit limit);

    [DllImport("libc", SetLastError = true)]
    private static extern int setrlimit(int resource, in RLimit limit);
#pragma warning restore SYSLIB1054
}
