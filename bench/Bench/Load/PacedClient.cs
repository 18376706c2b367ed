using System.Diagnostics;
using System.Globalization;

namespace Bench.Load;

/// <summary>
/// An open-loop client at a fixed, modest rate over its own keep-alive connections: a request is started at every
/// tick whether or not earlier ones have returned, so a stall of the server shows in every request it holds and
/// never slows the pace down. Each request is timed from its start and logged with how late its start was.
/// </summary>
/// <remarks>
/// Unlike a load generator that saturates the proxy's CPU (where the worst request of a window is set by queueing
/// behind thousands of others and swings by ten milliseconds at rest), at a rate the proxy serves with most of its
/// CPU idle the worst request at rest stays within a few milliseconds, so a stall of about one is visible.
/// The ticks come from a thread of its own (sleeping a millisecond at a time; requests that fell due meanwhile start
/// together), not from timers on the thread pool that also runs the responses.
/// </remarks>
internal sealed class PacedClient : IAsyncDisposable
{
    private readonly List<Sample> _samples = [];
    private readonly HttpClient _client;
    private readonly Thread _ticker;
    private readonly List<Task> _pending = [];
    private readonly Uri _url;
    private readonly long _step;
    private volatile bool _stop;

    private PacedClient(Uri url, int perSecond, int connections)
    {
        _url = url;
        _step = Stopwatch.Frequency / perSecond;
        _client = new HttpClient(new SocketsHttpHandler
        {
            UseProxy = false,
            MaxConnectionsPerServer = connections,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
        })
        { Timeout = TimeSpan.FromSeconds(10) };
        _ticker = new Thread(Tick) { IsBackground = true, Name = "paced client", Priority = ThreadPriority.AboveNormal };
    }

    /// <summary>Opens <paramref name="connections"/> connections, then starts <paramref name="perSecond"/> requests a second.</summary>
    public static async Task<PacedClient> StartAsync(Uri url, int perSecond, int connections)
    {
        var client = new PacedClient(url, perSecond, connections);
        // Every connection opened before the first tick, so no timed request pays for a connect.
        await Task.WhenAll(Enumerable.Range(0, connections).Select(_ => client._client.GetAsync(url)));
        client._ticker.Start();
        return client;
    }

    /// <summary>The requests that started in [<paramref name="from"/>, <paramref name="to"/>).</summary>
    public ProbeWindow Window(DateTimeOffset from, DateTimeOffset to)
    {
        lock (_samples)
        {
            return ProbeWindow.Of("paced client", from, to, [.. _samples.Where(s => s.Start >= from && s.Start < to).Select(s => (s.Ms, s.Ok))]);
        }
    }

    /// <summary>Every request so far, one line each: start (UTC), how late it started (ms), its latency (ms), ok.</summary>
    public async Task WriteLogAsync(string path)
    {
        List<Sample> all;
        lock (_samples)
        {
            all = [.. _samples.OrderBy(s => s.Start)];
        }

        await File.WriteAllLinesAsync(path, ["start,late_ms,ms,ok", .. all.Select(s =>
            string.Create(CultureInfo.InvariantCulture, $"{s.Start:HH:mm:ss.ffffff},{s.LateMs:0.000},{s.Ms:0.000},{(s.Ok ? 1 : 0)}"))]);
    }

    public async ValueTask DisposeAsync()
    {
        _stop = true;
        _ticker.Join();
        Task[] pending;
        lock (_pending)
        {
            pending = [.. _pending];
        }

        await Task.WhenAll(pending);
        _client.Dispose();
    }

    private void Tick()
    {
        var next = Stopwatch.GetTimestamp() + _step;
        while (!_stop)
        {
            var wait = next - Stopwatch.GetTimestamp();
            if (wait > 0)
            {
                // No spinning: the client shares its CPU with the backends. A start up to a millisecond late is
                // logged; the request is timed from its own start.
                Thread.Sleep(1);
                continue;
            }

            var late = Stopwatch.GetElapsedTime(next).TotalMilliseconds;
            var request = SendAsync(late);
            lock (_pending)
            {
                _pending.RemoveAll(t => t.IsCompleted);
                _pending.Add(request);
            }

            next += _step;
        }
    }

    private async Task SendAsync(double lateMs)
    {
        var start = DateTimeOffset.UtcNow;
        var started = Stopwatch.GetTimestamp();
        var ok = await ProbeWindow.GetAsync(_client, _url);
        var ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        lock (_samples)
        {
            _samples.Add(new Sample(start, lateMs, ms, ok));
        }
    }

    private readonly record struct Sample(DateTimeOffset Start, double LateMs, double Ms, bool Ok);
}
