using System.Diagnostics;
using Bench.Stats;

namespace Bench.Load;

/// <summary>
/// One client sending one request at a time on one connection, a new one every <c>interval</c> (or at once when
/// the last took longer), each timed from its start: whatever stops the server shows as one slow request, and
/// the samples can be cut into windows afterwards (at rest, during a change) and compared.
/// </summary>
internal sealed class SteadyProbe : IAsyncDisposable
{
    private readonly List<Sample> _samples = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly HttpClient _client;
    private readonly Task _sender;

    private SteadyProbe(Uri url, TimeSpan interval)
    {
        _client = new HttpClient(new SocketsHttpHandler { UseProxy = false, MaxConnectionsPerServer = 1 }) { Timeout = TimeSpan.FromSeconds(10) };
        _sender = Task.Run(() => SendAsync(url, interval));
    }

    public static SteadyProbe Start(Uri url, TimeSpan interval) => new(url, interval);

    /// <summary>The requests that started in [<paramref name="from"/>, <paramref name="to"/>).</summary>
    public ProbeWindow Window(DateTimeOffset from, DateTimeOffset to)
    {
        lock (_samples)
        {
            return ProbeWindow.Of("probing client", from, to, [.. _samples.Where(s => s.Start >= from && s.Start < to).Select(s => (s.Ms, s.Ok))]);
        }
    }

    /// <summary>Each request that started in [<paramref name="from"/>, <paramref name="to"/>): its start, how long it took, whether it succeeded.</summary>
    public List<(DateTimeOffset Start, double Ms, bool Ok)> Requests(DateTimeOffset from, DateTimeOffset to)
    {
        lock (_samples)
        {
            return [.. _samples.Where(s => s.Start >= from && s.Start < to).Select(s => (s.Start, s.Ms, s.Ok))];
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _sender;
        _client.Dispose();
        _stop.Dispose();
    }

    private async Task SendAsync(Uri url, TimeSpan interval)
    {
        var next = Stopwatch.GetTimestamp();
        var step = (long)(interval.TotalSeconds * Stopwatch.Frequency);
        while (!_stop.IsCancellationRequested)
        {
            var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), next);
            if (wait > TimeSpan.Zero)
            {
                try
                {
                    await Task.Delay(wait, _stop.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }

            var start = DateTimeOffset.UtcNow;
            var watch = Stopwatch.StartNew();
            var ok = await ProbeWindow.GetAsync(_client, url);

            lock (_samples)
            {
                _samples.Add(new Sample(start, watch.Elapsed.TotalMilliseconds, ok));
            }

            // A slow request is not followed by a burst making up for it: the pace restarts from now.
            next = Math.Max(next + step, Stopwatch.GetTimestamp());
        }
    }

    private readonly record struct Sample(DateTimeOffset Start, double Ms, bool Ok);
}

/// <summary>The probe's requests of one window: the slowest, the 99th percentile, how many failed, of how many.</summary>
internal sealed record ProbeWindow(DateTimeOffset From, DateTimeOffset To, double WorstMs, double P99Ms, int Failed, int Requests)
{
    /// <summary>The window of <paramref name="inside"/>, the requests of <paramref name="client"/> that started in it.</summary>
    public static ProbeWindow Of(string client, DateTimeOffset from, DateTimeOffset to, IReadOnlyList<(double Ms, bool Ok)> inside)
    {
        double[] sorted = [.. inside.Select(s => s.Ms).Order()];
        return sorted.Length == 0
            ? throw new InvalidOperationException($"The {client} completed no request between {from:HH:mm:ss.fff} and {to:HH:mm:ss.fff}.")
            : new ProbeWindow(from, to, sorted[^1], LatencyStats.Percentile(sorted, 99), inside.Count(s => !s.Ok), sorted.Length);
    }

    /// <summary>One GET with its body read: whether it succeeded (a transport failure or a timeout counts as failed).</summary>
    public static async Task<bool> GetAsync(HttpClient client, Uri url)
    {
        try
        {
            using var response = await client.GetAsync(url, HttpCompletionOption.ResponseContentRead);
            return response.IsSuccessStatusCode;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return false;
        }
    }
}
