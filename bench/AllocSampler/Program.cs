using System.Diagnostics.Tracing;
using System.Globalization;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Tracing;
using Microsoft.Diagnostics.Tracing.Parsers;

namespace AllocSampler;

/// <summary>
/// Attaches to a running .NET process over EventPipe and collects the runtime's allocation samples (one
/// GCAllocationTick event per ~100 KB allocated, naming the type whose allocation crossed the mark) for a
/// while, then prints each type's share of the sampled bytes, largest first, as "share|type" lines. With the
/// bytes a request allocates (from the GC's own counter), a share is that type's bytes per request.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length < 2 || !int.TryParse(args[0], out var pid) || !double.TryParse(args[1], CultureInfo.InvariantCulture, out var seconds))
        {
            Console.Error.WriteLine("Usage: AllocSampler PID SECONDS [TOP]");
            return 2;
        }

        var top = args.Length > 2 && int.TryParse(args[2], out var n) ? n : 20;
        var provider = new EventPipeProvider("Microsoft-Windows-DotNETRuntime", EventLevel.Verbose, (long)ClrTraceEventParser.Keywords.GC);
        var client = new DiagnosticsClient(pid);
        using var session = client.StartEventPipeSession([provider], requestRundown: false);
        var bytes = new Dictionary<string, long>();
        long total = 0;
        using var source = new EventPipeEventSource(session.EventStream);
        source.Clr.GCAllocationTick += e =>
        {
            var type = string.IsNullOrEmpty(e.TypeName) ? "(unnamed)" : e.TypeName;
            bytes[type] = bytes.GetValueOrDefault(type) + e.AllocationAmount64;
            total += e.AllocationAmount64;
        };

        var stop = Task.Delay(TimeSpan.FromSeconds(seconds)).ContinueWith(_ => session.Stop(), TaskScheduler.Default);
        source.Process();
        stop.Wait();
        Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"total|{total}"));
        foreach (var (type, amount) in bytes.OrderByDescending(p => p.Value).Take(top))
        {
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{100.0 * amount / total:0.0}|{type}"));
        }

        return 0;
    }
}
