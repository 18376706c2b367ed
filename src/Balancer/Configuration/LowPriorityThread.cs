using System.Runtime.InteropServices;

namespace Balancer.Configuration;

/// <summary>
/// Runs work on a thread of its own at a lowered OS scheduling priority (a Linux nice value), so that a long
/// burst of CPU work, such as reading and applying a config file of thousands of destinations, takes the CPU
/// mostly when the threads serving requests leave it idle.
/// </summary>
/// <remarks>
/// The thread ends with the work, so nothing has to raise its priority again (which an unprivileged process
/// may not do). Elsewhere than on Linux the work runs at normal priority.
/// </remarks>
internal static class LowPriorityThread
{
    /// <summary>
    /// The nice value a reload runs at unless configured: the requests' own. Lowered on a CPU that requests keep
    /// busy, a reload of thousands of destinations takes several times longer, its new objects outlive more
    /// collections and the blocking collection that follows is longer than the CPU it leaves to requests.
    /// </summary>
    public const int DefaultNice = 0;

    /// <summary>Starts <paramref name="work"/> on a new background thread named <paramref name="name"/> at nice <paramref name="nice"/>.</summary>
    public static Thread Start(string name, int nice, Action work)
    {
        var thread = new Thread(() =>
        {
            TrySetNice(nice);
            work();
        })
        {
            IsBackground = true,
            Name = name,
        };
        // No ambient context (a caller's Activity or AsyncLocal) flows into a reload.
        thread.UnsafeStart();
        return thread;
    }

    /// <summary>The calling thread's nice value, or null where it cannot be read.</summary>
    public static int? CurrentNice()
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        try
        {
            // -1 is both a valid nice value and the error return; errno tells them apart.
            Marshal.SetLastPInvokeError(0);
            var nice = getpriority(PrioProcess, gettid());
            return nice == -1 && Marshal.GetLastPInvokeError() != 0 ? null : nice;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }

    /// <summary>Sets the calling thread's nice value; false where that is not possible (another OS, a value the process may not take).</summary>
    public static bool TrySetNice(int nice)
    {
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        try
        {
            // PRIO_PROCESS with a thread id applies to that thread alone on Linux.
            return setpriority(PrioProcess, gettid(), nice) == 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    private const int PrioProcess = 0;

#pragma warning disable SYSLIB1054 // LibraryImport would need unsafe code enabled for the whole assembly, for three calls per reload.
    [DllImport("libc", SetLastError = true)]
    private static extern int gettid();

    [DllImport("libc", SetLastError = true)]
    private static extern int getpriority(int which, int who);

    [DllImport("libc", SetLastError = true)]
    private static extern int setpriority(int which, int who, int prio);
#pragma warning restore SYSLIB1054
}
