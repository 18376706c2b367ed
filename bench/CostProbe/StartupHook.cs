using System.Globalization;
using System.Net.Sockets;
using System.Reflection;
using System.Runtime;
using System.Text;

/// <summary>
/// A .NET startup hook (DOTNET_STARTUP_HOOKS=CostProbe.dll): when COST_PROBE_SOCKET names a path, a background
/// thread answers every connection to that Unix socket with one HTTP/1.0 response of counters read inside the
/// process: bytes allocated (GC.GetTotalAllocatedBytes, precise), CPU time, JIT compilation time and methods
/// compiled, collections and working set. The proxy under test does no extra work between two reads.
/// A request for <c>/timers</c> is answered instead with the runtime's timers queued now (callback, period, due in
/// milliseconds), read by reflection from the timer queues: what wakes the process's timer thread.
/// </summary>
internal static class StartupHook
{
    public static void Initialize()
    {
        var path = Environment.GetEnvironmentVariable("COST_PROBE_SOCKET");
        if (string.IsNullOrEmpty(path))
        {
            return;
        }

        File.Delete(path);
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(4);
        var thread = new Thread(() => Serve(listener)) { IsBackground = true, Name = "CostProbe" };
        thread.Start();
    }

    private static void Serve(Socket listener)
    {
        var buffer = new byte[1024];
        while (true)
        {
            using var client = listener.Accept();
            // The request itself does not matter (curl sends one); read what arrived so closing does not reset.
            var received = client.Receive(buffer);
            var body = Encoding.ASCII.GetString(buffer, 0, received).StartsWith("GET /timers", StringComparison.Ordinal) ? Timers() : Counters();
            var response = $"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {Encoding.ASCII.GetByteCount(body)}\r\n\r\n{body}";
            client.Send(Encoding.ASCII.GetBytes(response));
            client.Shutdown(SocketShutdown.Both);
        }
    }

    /// <summary>One line per timer: period (or once), due time and callback; runtime internals, so best effort.</summary>
    private static string Timers()
    {
        const BindingFlags Any = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance;
        var lines = new StringBuilder();
        try
        {
            var queueType = typeof(Timer).Assembly.GetType("System.Threading.TimerQueue", throwOnError: true)!;
            var timerType = typeof(Timer).Assembly.GetType("System.Threading.TimerQueueTimer", throwOnError: true)!;
            var next = timerType.GetField("_next", Any)!;
            foreach (var queue in (Array)queueType.GetProperty("Instances", Any)!.GetValue(null)!)
            {
                foreach (var list in new[] { "_shortTimers", "_longTimers" })
                {
                    for (var timer = queueType.GetField(list, Any)!.GetValue(queue); timer is not null; timer = next.GetValue(timer))
                    {
                        var callback = timerType.GetField("_timerCallback", Any)!.GetValue(timer) as Delegate;
                        var period = (uint)timerType.GetField("_period", Any)!.GetValue(timer)!;
                        var state = timerType.GetField("_state", Any)!.GetValue(timer);
                        lines.Append(CultureInfo.InvariantCulture, $"period_ms {(period == uint.MaxValue ? "once" : period.ToString(CultureInfo.InvariantCulture))} ")
                            .Append(CultureInfo.InvariantCulture, $"due_ms {timerType.GetField("_dueTime", Any)!.GetValue(timer)} ")
                            .Append(CultureInfo.InvariantCulture, $"callback {callback?.Method.DeclaringType}::{callback?.Method.Name} state {state?.GetType()}\n");
                    }
                }
            }
        }
        catch (Exception e) when (e is TypeLoadException or NullReferenceException or InvalidCastException or ArgumentException)
        {
            lines.Append(CultureInfo.InvariantCulture, $"error this runtime's timer queues could not be read: {e.Message}\n");
        }

        return lines.ToString();
    }

    private static string Counters()
    {
        var cpu = Environment.CpuUsage;
        return string.Create(CultureInfo.InvariantCulture,
            $"""
            allocated_bytes {GC.GetTotalAllocatedBytes(precise: true)}
            cpu_us {cpu.TotalTime.Ticks / 10}
            jit_ms {JitInfo.GetCompilationTime().TotalMilliseconds:0.0}
            jit_methods {JitInfo.GetCompiledMethodCount()}
            gc0 {GC.CollectionCount(0)}
            gc1 {GC.CollectionCount(1)}
            gc2 {GC.CollectionCount(2)}
            working_set_bytes {Environment.WorkingSet}

            """);
    }
}
