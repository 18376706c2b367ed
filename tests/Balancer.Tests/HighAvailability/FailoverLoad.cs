using System.Diagnostics;

namespace Balancer.Tests.HighAvailability;

/// <summary>
/// Steady GET load at a fixed pace from a few clients, each request recorded with when it started and
/// whether it got a 2xx answer: what a failover costs is read from the record.
/// </summary>
internal sealed class FailoverLoad : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Outcome> _outcomes = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Task[] _workers;

    private FailoverLoad(HttpClient client, int clients, TimeSpan every)
    {
        _workers = [.. Enumerable.Range(0, clients).Select(_ => Task.Run(() => RunAsync(client, every)))];
    }

    public sealed record Outcome(TimeSpan At, bool Succeeded, string What, TimeSpan Took);

    /// <summary>How one event went: requests started after it that failed, when requests last failed, the slowest that succeeded.</summary>
    public sealed record Cost(int Requests, int Failed, TimeSpan Recovery, IReadOnlyList<string> Failures, TimeSpan Slowest);

    public TimeSpan Now => _clock.Elapsed;

    public static FailoverLoad Start(HttpClient client, int clients, TimeSpan every) => new(client, clients, every);

    public int SucceededSince(TimeSpan since)
    {
        lock (_outcomes)
        {
            return _outcomes.Count(o => o.At >= since && o.Succeeded);
        }
    }

    /// <summary>
    /// Requests started from <paramref name="from"/> on; recovery is the time from <paramref name="from"/> to the
    /// start of the first request that succeeded after the last failed one (zero when none failed).
    /// </summary>
    public Cost CostSince(TimeSpan from)
    {
        lock (_outcomes)
        {
            var since = _outcomes.Where(o => o.At >= from).ToList();
            var failed = since.Where(o => !o.Succeeded).ToList();
            var lastFailure = failed.Count == 0 ? from : failed.Max(o => o.At);
            var recovery = failed.Count == 0 ? TimeSpan.Zero : since.Where(o => o.Succeeded && o.At > lastFailure).Select(o => o.At).DefaultIfEmpty(lastFailure).Min() - from;
            var slowest = since.Where(o => o.Succeeded).Select(o => o.Took).DefaultIfEmpty(TimeSpan.Zero).Max();
            return new Cost(since.Count, failed.Count, recovery, [.. failed.Take(10).Select(o => $"{(o.At - from).TotalMilliseconds:0} ms: {o.What}")], slowest);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_workers);
        _stop.Dispose();
    }

    private async Task RunAsync(HttpClient client, TimeSpan every)
    {
        using var timer = new PeriodicTimer(every);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token))
            {
                var at = _clock.Elapsed;
                Outcome outcome;
                try
                {
                    using var response = await client.GetAsync("/", CancellationToken.None);
                    outcome = new Outcome(at, response.IsSuccessStatusCode, $"{(int)response.StatusCode}", _clock.Elapsed - at);
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    outcome = new Outcome(at, false, $"{e.Message} ({e.GetBaseException().GetType().Name}: {e.GetBaseException().Message}) after {(_clock.Elapsed - at).TotalMilliseconds:0} ms", _clock.Elapsed - at);
                }

                lock (_outcomes)
                {
                    _outcomes.Add(outcome);
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }
}
