using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Balancer.Tests.HighAvailability;

/// <summary>
/// HttpClients whose connections start inside a network namespace. A socket belongs to the namespace of the
/// thread that creates it, so one dedicated thread enters the namespace (setns) and only creates sockets;
/// connecting and all traffic then happen on ordinary threads.
/// </summary>
internal sealed class NamespaceSockets : IDisposable
{
    private const int CloneNewNet = 0x40000000;
    private readonly BlockingCollection<TaskCompletionSource<Socket>> _requests = [];
    private readonly Thread _thread;

    public NamespaceSockets(string ns)
    {
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _thread = new Thread(() => Serve(ns, entered)) { IsBackground = true, Name = "sockets in " + ns };
        _thread.Start();
        entered.Task.GetAwaiter().GetResult();
    }

    public HttpClient CreateClient(Uri baseAddress, TimeSpan timeout) =>
        new(new SocketsHttpHandler { ConnectCallback = ConnectAsync, ConnectTimeout = timeout })
        {
            BaseAddress = baseAddress,
            Timeout = timeout,
        };

    public void Dispose()
    {
        _requests.CompleteAdding();
        _thread.Join();
        _requests.Dispose();
    }

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var created = new TaskCompletionSource<Socket>(TaskCreationOptions.RunContinuationsAsynchronously);
        _requests.Add(created, cancellationToken);
        var socket = await created.Task;
        try
        {
            socket.NoDelay = true;
            await socket.ConnectAsync(IPAddress.Parse(context.DnsEndPoint.Host), context.DnsEndPoint.Port, cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private void Serve(string ns, TaskCompletionSource entered)
    {
        try
        {
            using var handle = File.OpenHandle($"/run/netns/{ns}");
            if (SetNs(handle.DangerousGetHandle().ToInt32(), CloneNewNet) != 0)
            {
                throw new InvalidOperationException($"setns into {ns} failed: errno {Marshal.GetLastPInvokeError()}");
            }
        }
        catch (Exception e)
        {
            entered.SetException(e);
            return;
        }

        entered.SetResult();
        foreach (var request in _requests.GetConsumingEnumerable())
        {
            try
            {
                request.SetResult(new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
            }
            catch (SocketException e)
            {
                request.SetException(e);
            }
        }
    }

#pragma warning disable SYSLIB1054 // LibraryImport would need unsafe code enabled for the whole test assembly, for one call.
    [DllImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static extern int SetNs(int fd, int nstype);
#pragma warning restore SYSLIB1054
}
