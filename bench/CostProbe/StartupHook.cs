using System.Globalization;
using System.Net.Sockets;
using System.Runtime;
using System.Text;

/// <summary>
/// A .NET startup hook (DOTNET_STARTUP_HOOKS=CostProbe.dll): when COST_PROBE_SOCKET names a path, a background
/// thread answers every connection to that Unix socket with one HTTP/1.0 response of counters read inside the
/// process: bytes allocated (GC.GetTotalAllocatedBytes, precise), CPU time, JIT compilation time and methods
/// compiled, collections and working set. The proxy under test does no extra work between two reads.
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
            client.Receive(buffer);
            var body = Counters();
            var response = $"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {Encoding.ASCII.GetByteCount(body)}\r\n\r\n{body}";
            client.Send(Encoding.ASCII.GetBytes(response));
            client.Shutdown(SocketShutdown.Both);
        }
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
