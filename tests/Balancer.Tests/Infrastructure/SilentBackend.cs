using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Balancer.Tests.Infrastructure;

/// <summary>
/// A backend that accepts every connection on a loopback port chosen by the OS, reads each request's head
/// and never answers: the hung process that a connect timeout cannot catch. It records the request lines it
/// read, so a test can tell how many requests (apart from health probes) landed on it. Started with a
/// response head, it sends that head and then goes silent instead, until told to send the rest.
/// </summary>
internal sealed class SilentBackend : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<string> _requestLines = [];
    private readonly List<Task> _connections = [];
    private readonly List<Socket> _answered = [];
    private readonly byte[]? _responseHead;
    private Task _accepting = Task.CompletedTask;

    private SilentBackend(string? responseHead) => _responseHead = responseHead is null ? null : Encoding.Latin1.GetBytes(responseHead);

    public Uri Address => new($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/");

    /// <summary>Request lines read so far (<c>GET /path HTTP/1.1</c>), one per connection, health probes included.</summary>
    public IReadOnlyList<string> RequestLines
    {
        get
        {
            lock (_requestLines)
            {
                return [.. _requestLines];
            }
        }
    }

    /// <summary>Requests other than health probes (<c>/health</c>) read so far.</summary>
    public int Requests => RequestLines.Count(line => !line.Contains(" /health ", StringComparison.Ordinal));

    /// <param name="responseHead">Sent once a request's head is read (status line and fields, blank line included).</param>
    public static SilentBackend Start(string? responseHead = null)
    {
        var backend = new SilentBackend(responseHead);
        backend._listener.Start();
        backend._accepting = backend.AcceptAsync();
        return backend;
    }

    /// <summary>Sends <paramref name="text"/> on every connection that got the response head.</summary>
    public async Task SendToAnsweredAsync(string text)
    {
        Socket[] sockets;
        lock (_answered)
        {
            sockets = [.. _answered];
        }

        foreach (var socket in sockets)
        {
            await socket.SendAsync(Encoding.Latin1.GetBytes(text), SocketFlags.None);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        Task[] connections;
        lock (_connections)
        {
            connections = [.. _connections];
        }

        await Task.WhenAll(connections);
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var socket = await _listener.AcceptSocketAsync(_stop.Token);
                lock (_connections)
                {
                    _connections.Add(HoldAsync(socket));
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Stopped.
        }
    }

    /// <summary>
    /// Reads the first request's head and records its line, then reads and drops whatever follows (a body)
    /// until the client gives up: with no answer, an HTTP/1.1 client sends nothing else on the connection.
    /// </summary>
    private async Task HoldAsync(Socket socket)
    {
        using var _ = socket;
        var buffer = new byte[16 * 1024];
        var head = new StringBuilder();
        var recorded = false;
        try
        {
            while (true)
            {
                var read = await socket.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                if (read == 0)
                {
                    return;
                }

                if (recorded)
                {
                    continue;
                }

                head.Append(Encoding.Latin1.GetString(buffer, 0, read));
                var text = head.ToString();
                if (text.Contains("\r\n\r\n", StringComparison.Ordinal))
                {
                    recorded = true;
                    lock (_requestLines)
                    {
                        _requestLines.Add(text[..text.IndexOf("\r\n", StringComparison.Ordinal)]);
                    }

                    if (_responseHead is not null)
                    {
                        // Listed before the head goes out: a client holding the head may ask for the rest at once.
                        lock (_answered)
                        {
                            _answered.Add(socket);
                        }

                        await socket.SendAsync(_responseHead, SocketFlags.None, _stop.Token);
                    }
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Stopped, or the balancer closed the connection.
        }
    }
}
