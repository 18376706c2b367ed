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
/// The client stalls too (its own GC, the harness's other work, the CPU it shares with the backends): on the idle
/// machine the worst request of a window was a request in flight while the client's threads stood still for 17-22 ms,
/// every request that followed on time. A third thread that sends nothing and only wakes every millisecond records
/// when the client stood still (<see cref="ClientStall"/>); each request's time is also given without the part of the
/// client's stalls that fell inside it, which is the server's time as near as the client can tell.
/// </remarks>
internal sealed class PacedClient : IAsyncDisposable
{
    /// <summary>A wake of the stall watch later than this after the one before counts the excess as the client standing still.</summary>
    private static readonly long StallAfter = Stopwatch.Frequency * 3 / 2000;

    /// <summary>What <see cref="Thread.Sleep(int)"/> of 1 ms takes when nothing is in the way.</summary>
    private static readonly long SleepTakes = Stopwatch.Frequency * 11 / 10000;

    private readonly List<Sample> _samples;
    private readonly List<ClientStall> _stalls = [];
    private readonly HttpClient _client;
    private readonly Thread _ticker;
    private readonly Thread _stallWatch;
    private readonly List<Task> _pending = [];
    private readonly Uri _url;
    private readonly long _step;
    private volatile bool _stop;

    private PacedClient(Uri url, int perSecond, int connections, TimeSpan expected)
    {
        _url = url;
        _step = Stopwatch.Frequency / perSecond;
        // Sized once for the whole run: a list doubling from 262,144 samples copies 10 MB into a new large array, which
        // can start a blocking collection of the harness (the client's threads stand still for it).
        _samples = new List<Sample>((int)(perSecond * expected.TotalSeconds * 1.1) + 1024);
        _client = new HttpClient(new SocketsHttpHandler
        {
            UseProxy = false,
            MaxConnectionsPerServer = connections,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
        })
        { Timeout = TimeSpan.FromSeconds(10) };
        _ticker = new Thread(Tick) { IsBackground = true, Name = "paced client", Priority = ThreadPriority.AboveNormal };
        _stallWatch = new Thread(WatchStalls) { IsBackground = true, Name = "paced client stall watch", Priority = ThreadPriority.AboveNormal };
    }

    /// <summary>Opens <paramref name="connections"/> connections, then starts <paramref name="perSecond"/> requests a second, for about <paramref name="expected"/>.</summary>
    public static async Task<PacedClient> StartAsync(Uri url, int perSecond, int connections, TimeSpan expected)
    {
        var client = new PacedClient(url, perSecond, connections, expected);
        // Every connection opened before the first tick, so no timed request pays for a connect.
        await Task.WhenAll(Enumerable.Range(0, connections).Select(_ => client._client.GetAsync(url)));
        client._stallWatch.Start();
        client._ticker.Start();
        return client;
    }

    /// <summary>
    /// Between two windows: waits for the requests of the window before to end, collects the harness's whole heap, then
    /// waits for the requests it held up to end. A window that starts after it starts with the client's collections as far
    /// off as they can be (the harness keeps every earlier experiment's results: one of its collections stopped the client
    /// for 34.8 ms inside a change window on the loaded machine).
    /// </summary>
    public static async Task CollectAsync()
    {
        await Task.Delay(TimeSpan.FromMilliseconds(100));
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        await Task.Delay(TimeSpan.FromMilliseconds(250));
    }

    /// <summary>The requests that started in [<paramref name="from"/>, <paramref name="to"/>), as timed and without the client's own stalls.</summary>
    public PacedWindow Window(DateTimeOffset from, DateTimeOffset to)
    {
        List<Sample> inside;
        ClientStall[] stalls;
        lock (_samples)
        {
            inside = [.. _samples.Where(s => s.Start >= from && s.Start < to)];
        }

        lock (_stalls)
        {
            stalls = [.. _stalls];
        }

        var windowFrom = inside.Count == 0 ? 0 : inside.Min(s => s.Started);
        var windowTo = inside.Count == 0 ? 0 : inside.Max(s => s.Ended);
        var stalled = stalls.Where(s => s.To > windowFrom && s.From < windowTo).ToArray();
        return new PacedWindow(
            ProbeWindow.Of("paced client", from, to, [.. inside.Select(s => (s.Ms, s.Ok))]),
            ProbeWindow.Of("paced client", from, to, [.. inside.Select(s => (s.Ms - Overlap(s, stalled), s.Ok))]),
            stalled.Length == 0 ? 0 : stalled.Max(s => s.Ms),
            stalled.Sum(s => s.GcMs));
    }

    /// <summary>Every request so far, one line each: start (UTC), how late it started (ms), its latency (ms), the client's stalls inside it (ms), ok.</summary>
    public async Task WriteLogAsync(string path)
    {
        List<Sample> all;
        ClientStall[] stalls;
        lock (_samples)
        {
            all = [.. _samples.OrderBy(s => s.Start)];
        }

        lock (_stalls)
        {
            stalls = [.. _stalls];
        }

        await File.WriteAllLinesAsync(path, ["start,late_ms,ms,client_stall_ms,ok", .. all.Select(s =>
            string.Create(CultureInfo.InvariantCulture, $"{s.Start:HH:mm:ss.ffffff},{s.LateMs:0.000},{s.Ms:0.000},{Overlap(s, stalls):0.000},{(s.Ok ? 1 : 0)}"))]);
        var origin = DateTimeOffset.UtcNow - Stopwatch.GetElapsedTime(0);
        await File.WriteAllLinesAsync(Path.ChangeExtension(path, null) + "-client-stalls.csv", ["start,ms,client_gc_ms", .. stalls.Select(s =>
            string.Create(CultureInfo.InvariantCulture, $"{origin + Stopwatch.GetElapsedTime(0, s.From):HH:mm:ss.ffffff},{s.Ms:0.000},{s.GcMs:0.000}"))]);
    }

    public async ValueTask DisposeAsync()
    {
        _stop = true;
        _ticker.Join();
        _stallWatch.Join();
        Task[] pending;
        lock (_pending)
        {
            pending = [.. _pending];
        }

        await Task.WhenAll(pending);
        _client.Dispose();
    }

    /// <summary>The part of <paramref name="sample"/>'s time during which the client stood still (ms).</summary>
    private static double Overlap(Sample sample, IEnumerable<ClientStall> stalls) =>
        StillTicks(sample.Started, sample.Ended, stalls.Select(s => (s.From, s.To))) * 1000.0 / Stopwatch.Frequency;

    /// <summary>How much of [<paramref name="from"/>, <paramref name="to"/>) the <paramref name="stalls"/> (disjoint, as one thread sees them) cover.</summary>
    internal static long StillTicks(long from, long to, IEnumerable<(long From, long To)> stalls)
    {
        long ticks = 0;
        foreach (var stall in stalls)
        {
            ticks += Math.Max(0, Math.Min(stall.To, to) - Math.Max(stall.From, from));
        }

        return ticks;
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

    /// <summary>
    /// Wakes every millisecond and nothing else: a wake much later than that means the client's threads could not run
    /// (its own collection, which <see cref="GC.GetTotalPauseDuration"/> tells apart, or its CPU taken by others).
    /// </summary>
    private void WatchStalls()
    {
        var last = Stopwatch.GetTimestamp();
        var paused = GC.GetTotalPauseDuration();
        while (!_stop)
        {
            Thread.Sleep(1);
            var now = Stopwatch.GetTimestamp();
            var pausedNow = GC.GetTotalPauseDuration();
            if (now - last > StallAfter)
            {
                lock (_stalls)
                {
                    _stalls.Add(new ClientStall(last + SleepTakes, now, (pausedNow - paused).TotalMilliseconds));
                }
            }

            last = now;
            paused = pausedNow;
        }
    }

    private async Task SendAsync(double lateMs)
    {
        var start = DateTimeOffset.UtcNow;
        var started = Stopwatch.GetTimestamp();
        var ok = await ProbeWindow.GetAsync(_client, _url);
        var ended = Stopwatch.GetTimestamp();
        lock (_samples)
        {
            _samples.Add(new Sample(start, started, ended, lateMs, ok));
        }
    }

    private readonly record struct Sample(DateTimeOffset Start, long Started, long Ended, double LateMs, bool Ok)
    {
        public double Ms => (Ended - Started) * 1000.0 / Stopwatch.Frequency;
    }

    /// <summary>A time the client's threads stood still (Stopwatch timestamps), and how much of it its own collections took.</summary>
    private readonly record struct ClientStall(long From, long To, double GcMs)
    {
        public double Ms => (To - From) * 1000.0 / Stopwatch.Frequency;
    }
}

/// <summary>
/// A paced client's window: its requests as timed, the same without the client's own stalls inside each, the client's
/// longest stall in the window and the part of its stalls its own collections took.
/// </summary>
internal sealed record PacedWindow(ProbeWindow Timed, ProbeWindow WithoutClientStalls, double ClientStallMs, double ClientGcMs)
{
    public DateTimeOffset From => Timed.From;

    public DateTimeOffset To => Timed.To;
}
