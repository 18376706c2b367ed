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
        List<Sample> inside;
        lock (_samples)
        {
            inside = [.. _samples.Where(s => s.Start >= from && s.Start < to)];
        }

        double[] sorted = [.. inside.Select(s => s.Ms).Order()];
        return sorted.Length == 0
            ? throw new InvalidOperationException($"The probing client completed no request between {from:HH:mm:ss.fff} and {to:HH:mm:ss.fff}.")
            : new ProbeWindow(from, to, sorted[^1], LatencyStats.Percentile(sorted, 99), inside.Count(s => !s.Ok), sorted.Length);
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
            bool ok;
            try
            {
                using var response = await _client.GetAsync(url, HttpCompletionOption.ResponseContentRead);
                ok = response.IsSuccessStatusCode;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                ok = false;
            }

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
internal sealed record ProbeWindow(DateTimeOffset From, DateTimeOffset To, double WorstMs, double P99Ms, int Failed, int Requests);
