namespace Balancer.Tests.Infrastructure;

/// <summary>Background GET traffic from a few concurrent clients, counting every failure.</summary>
internal sealed class SteadyTraffic : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task[] _workers;
    private readonly List<string> _failures = [];
    private long _succeeded;

    public SteadyTraffic(HttpClient client, int clients, string path = "/")
    {
        _workers = [.. Enumerable.Range(0, clients).Select(_ => Task.Run(() => RunAsync(client, path)))];
    }

    /// <summary>Successful requests so far.</summary>
    public long Succeeded => Interlocked.Read(ref _succeeded);

    public async Task<(long Succeeded, int Failed, IReadOnlyList<string> Failures)> StopAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_workers);
        lock (_failures)
        {
            return (Interlocked.Read(ref _succeeded), _failures.Count, [.. _failures]);
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _stop.Dispose();
    }

    private async Task RunAsync(HttpClient client, string path)
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                using var response = await client.GetAsync(path, CancellationToken.None);
                if (response.IsSuccessStatusCode)
                {
                    Interlocked.Increment(ref _succeeded);
                }
                else
                {
                    Fail($"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
                }
            }
            catch (HttpRequestException e)
            {
                Fail(e.Message);
            }
        }
    }

    private void Fail(string reason)
    {
        lock (_failures)
        {
            _failures.Add(reason);
        }
    }
}
