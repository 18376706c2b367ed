using System.Runtime;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Balancer.Hosting;

/// <summary>
/// Hands the C heap's free pages back to the OS after the JIT has compiled something, at most once per
/// <see cref="Interval"/>.
/// </summary>
/// <remarks>
/// The JIT works in memory it takes from the C library's <c>malloc</c>: several MB for one large method
/// optimized with its inlinees, freed when the method is done. glibc keeps freed memory in the arena of the thread
/// that freed it (one per thread up to eight per CPU; the JIT's and the thread pool's threads come and go) and
/// returns only the top of an arena to the OS. After a config reload or a backend restart, code run for the
/// first time is compiled again at tier 1 a while later, and each such burst left an arena a few MB larger for
/// good: in a 10-minute soak the arenas grew from 10 to 27 MB, most of the balancer's RSS growth, and
/// <c>malloc_trim</c> gave 22 MB back (docs/benchmarks.md, "Measured: the soak"). Only a process that still
/// compiles pays for the call; once the JIT is quiet, nothing runs but the timer.
/// </remarks>
internal sealed class NativeHeapTrim : IHostedService, IDisposable
{
    /// <summary>How often the JIT's count of compiled methods is looked at.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    private readonly TimeProvider _time;
    private readonly Func<long> _compiledMethods;
    private readonly Func<bool> _trim;
    private readonly Lock _ticking = new();
    private ITimer? _timer;
    private long _trimmedAt;

    public NativeHeapTrim(TimeProvider time)
        : this(time, static () => JitInfo.GetCompiledMethodCount(currentThread: false), GlibcHeap.Trim)
    {
    }

    /// <param name="compiledMethods">The JIT's count of methods compiled so far.</param>
    /// <param name="trim">Returns free heap pages to the OS; false where that cannot be done, which stops the checks.</param>
    internal NativeHeapTrim(TimeProvider time, Func<long> compiledMethods, Func<bool> trim)
    {
        _time = time;
        _compiledMethods = compiledMethods;
        _trim = trim;
    }

    /// <summary>How many times the heap was trimmed.</summary>
    public int Trims { get; private set; }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        // Native AOT compiles nothing at run time, and only glibc keeps memory this way.
        if (RuntimeFeature.IsDynamicCodeSupported && OperatingSystem.IsLinux())
        {
            // Start-up's own compiling counts: the first check after it settles trims what it left.
            _timer = _time.CreateTimer(_ => Tick(), null, Interval, Interval);
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _timer?.Dispose();
        return Task.CompletedTask;
    }

    public void Dispose() => _timer?.Dispose();

    internal void Tick()
    {
        lock (_ticking)
        {
            var compiled = _compiledMethods();
            if (compiled == _trimmedAt)
            {
                return;
            }

            _trimmedAt = compiled;
            if (_trim())
            {
                Trims++;
            }
            else
            {
                _timer?.Dispose();
            }
        }
    }

    /// <summary>glibc's <c>malloc_trim</c>.</summary>
    internal static class GlibcHeap
    {
        /// <summary>Returns every whole free page of every arena to the OS; false where the C library has no <c>malloc_trim</c> (musl).</summary>
        public static bool Trim()
        {
            try
            {
                malloc_trim(0);
                return true;
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                return false;
            }
        }

#pragma warning disable SYSLIB1054 // LibraryImport would need unsafe code enabled for the whole assembly, for one call now and then.
        [DllImport("libc")]
        private static extern int malloc_trim(nuint pad);
#pragma warning restore SYSLIB1054
    }
}
