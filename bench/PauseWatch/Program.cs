using System.Diagnostics.Tracing;
using System.Globalization;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Tracing;
using Microsoft.Diagnostics.Tracing.Parsers;
using Microsoft.Diagnostics.Tracing.Parsers.Clr;

namespace PauseWatch;

/// <summary>
/// Attaches to a running .NET process over EventPipe and prints, as they happen, what stops its threads: every
/// GC pause (suspension to restart, with the generation and kind of the GC inside it), every lock wait of 1 ms or
/// more (the runtime's contention events), and every thread the pool adds because it was starved. One line each,
/// "kind|unix-ms at the start|duration ms|detail", so that a client's slow requests can be laid against them; a
/// first line "ready" once the session is open.
/// Runs for SECONDS.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0].EndsWith(".nettrace", StringComparison.Ordinal))
        {
            return Compiles(args[0], args.Length > 2 ? (TimeOnly.Parse(args[1], CultureInfo.InvariantCulture), TimeOnly.Parse(args[2], CultureInfo.InvariantCulture)) : null);
        }

        if (args.Length < 2 || !int.TryParse(args[0], out var pid) || !double.TryParse(args[1], CultureInfo.InvariantCulture, out var seconds))
        {
            Console.Error.WriteLine("Usage: PauseWatch PID SECONDS | PauseWatch FILE.nettrace [FROM TO]");
            return 2;
        }

        var keywords = ClrTraceEventParser.Keywords.GC | ClrTraceEventParser.Keywords.Contention | ClrTraceEventParser.Keywords.Threading;
        var provider = new EventPipeProvider("Microsoft-Windows-DotNETRuntime", EventLevel.Informational, (long)keywords);
        var client = new DiagnosticsClient(pid);
        using var session = client.StartEventPipeSession([provider], requestRundown: false);
        Console.Out.WriteLine("ready");
        Console.Out.Flush();
        using var source = new EventPipeEventSource(session.EventStream);
        var output = Console.Out;
        double? suspended = null;
        var gcs = new List<string>();
        void Write(string kind, double start, double ms, string detail)
        {
            lock (output)
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{kind}|{start:0.000}|{ms:0.000}|{detail}"));
                output.Flush();
            }
        }

        static double UnixMs(TraceEvent e) => (e.TimeStamp.ToUniversalTime() - DateTime.UnixEpoch).TotalMilliseconds;
        source.Clr.GCSuspendEEStart += e => suspended ??= UnixMs(e);
        source.Clr.GCStart += e => gcs.Add($"gen{e.Depth} {e.Type} {e.Reason}");
        source.Clr.GCHeapStats += e => gcs.Add(string.Create(CultureInfo.InvariantCulture,
            $"promoted {e.TotalPromotedSize0 / 1048576.0:0.0}/{e.TotalPromotedSize1 / 1048576.0:0.0}/{e.TotalPromotedSize2 / 1048576.0:0.0} MB, gen0-2+LOH {e.GenerationSize0 / 1048576.0:0}/{e.GenerationSize1 / 1048576.0:0}/{e.GenerationSize2 / 1048576.0:0}/{e.GenerationSize3 / 1048576.0:0} MB, pinned {e.PinnedObjectCount}, handles {e.GCHandleCount}"));
        source.Clr.GCRestartEEStop += e =>
        {
            if (suspended is { } start)
            {
                Write("gc", start, UnixMs(e) - start, gcs.Count == 0 ? "suspension only" : string.Join(", ", gcs));
            }

            suspended = null;
            gcs.Clear();
        };
        source.Clr.ContentionStop += e =>
        {
            var ms = e.DurationNs / 1e6;
            if (ms >= 1)
            {
                Write("lock", UnixMs(e) - ms, ms, $"thread {e.ThreadID}");
            }
        };
        source.Clr.ThreadPoolWorkerThreadAdjustmentAdjustment += e =>
        {
            if (e.Reason == ThreadAdjustmentReason.Starvation)
            {
                Write("starved", UnixMs(e), 0, $"pool grown to {e.NewWorkerThreadCount} threads");
            }
        };

        using var stop = new Timer(_ => session.Stop(), null, TimeSpan.FromSeconds(seconds), Timeout.InfiniteTimeSpan);
        source.Process();
        return 0;
    }

    /// <summary>
    /// Every method the JIT compiled, from a trace the process wrote itself (<c>DOTNET_EnableEventPipe=1</c>,
    /// <c>DOTNET_EventPipeConfig=Microsoft-Windows-DotNETRuntime:0x10:5</c>, <c>DOTNET_EventPipeOutputPath=DIR/trace-{pid}.nettrace</c>;
    /// bench/run.sh gives them to the balancer alone through <c>BENCH_BALANCER_ENV</c>): one line each, the UTC time its
    /// compilation started, how long it took (wall clock, on its thread), the thread and the tier; between FROM and TO
    /// (UTC times of day, as the scale experiment's pauses files give its windows) only, then their count and total.
    /// </summary>
    private static int Compiles(string path, (TimeOnly From, TimeOnly To)? window)
    {
        using var source = new EventPipeEventSource(path);
        var started = new Dictionary<int, DateTime>();
        var (count, ms, replaced, replacedMs) = (0, 0.0, 0, 0.0);
        source.Clr.MethodJittingStarted += e => started[e.ThreadID] = e.TimeStamp.ToUniversalTime();
        source.Clr.MethodLoadVerbose += e =>
        {
            if (!started.Remove(e.ThreadID, out var start)
                || (window is var (from, to) && (TimeOnly.FromDateTime(start) < from || TimeOnly.FromDateTime(start) >= to)))
            {
                return;
            }

            var took = (e.TimeStamp.ToUniversalTime() - start).TotalMilliseconds;
            var onStack = e.OptimizationTier == OptimizationTier.OptimizedTier1OSR;
            (count, ms) = (count + 1, ms + took);
            (replaced, replacedMs) = onStack ? (replaced + 1, replacedMs + took) : (replaced, replacedMs);
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{start:HH:mm:ss.ffffff} {took,8:0.000} ms thread {e.ThreadID} {e.OptimizationTier} {e.MethodNamespace}.{e.MethodName}"));
        };
        source.Process();
        Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{count} methods compiled, {ms:0.0} ms; on-stack replacement {replaced}, {replacedMs:0.0} ms"));
        return 0;
    }
}
