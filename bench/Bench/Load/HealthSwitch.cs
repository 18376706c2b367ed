using System.Net;
using System.Net.Sockets;

namespace Bench.Load;

/// <summary>
/// A health endpoint the harness answers itself, for destinations whose <c>Health</c> address points here: every path
/// answers 200 while <see cref="Healthy"/>, 503 otherwise, and the first path segment names the destination that asked,
/// so the harness knows when each has been told (without asking the balancer, whose status page would itself cost the
/// proxy's CPU at 10,000 destinations).
/// </summary>
internal sealed class HealthSwitch : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Dictionary<string, bool> _lastAnswer = new(StringComparer.Ordinal);
    private readonly Task _serving;
    private volatile bool _healthy = true;

    public HealthSwitch()
    {
        Port = FreePort();
        _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
        _listener.Start();
        _serving = Task.Run(ServeAsync);
    }

    public int Port { get; }

    /// <summary>The health address of <paramref name="destination"/> (the probe path is appended to it).</summary>
    public Uri AddressOf(string destination) => new($"http://127.0.0.1:{Port}/{destination}/");

    public bool Healthy
    {
        get => _healthy;
        set
        {
            lock (_lastAnswer)
            {
                _healthy = value;
                _lastAnswer.Clear();
            }
        }
    }

    /// <summary>Whether every one of <paramref name="destinations"/> was answered with the current state since it was set.</summary>
    public bool AllTold(IEnumerable<string> destinations)
    {
        lock (_lastAnswer)
        {
            return destinations.All(d => _lastAnswer.TryGetValue(d, out var answer) && answer == _healthy);
        }
    }

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
        try
        {
            _serving.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }
    }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            bool healthy;
            lock (_lastAnswer)
            {
                healthy = _healthy;
                var segments = context.Request.Url?.AbsolutePath.Split('/', StringSplitOptions.RemoveEmptyEntries) ?? [];
                if (segments.Length > 0)
                {
                    _lastAnswer[segments[0]] = healthy;
                }
            }

            context.Response.StatusCode = healthy ? 200 : 503;
            context.Response.ContentLength64 = 0;
            context.Response.Close();
        }
    }

    private static int FreePort()
    {
        using var socket = new TcpListener(IPAddress.Loopback, 0);
        socket.Start();
        return ((IPEndPoint)socket.LocalEndpoint).Port;
    }
}
