namespace Balancer.Tests.Infrastructure;

/// <summary>
/// One GET per tick, whatever its outcome (a killed backend fails some), until disposed: light, steady
/// load for tests that watch the balancer rather than stress it.
/// </summary>
internal sealed class PacedTraffic : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private Task _running = Task.CompletedTask;

    public static PacedTraffic Start(HttpClient client, TimeSpan every, string path = "/")
    {
        var traffic = new PacedTraffic();
        traffic._running = Task.Run(() => traffic.RunAsync(client, every, path));
        return traffic;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _running;
        _stop.Dispose();
    }

    private async Task RunAsync(HttpClient client, TimeSpan every, string path)
    {
        using var timer = new PeriodicTimer(every);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token))
            {
                try
                {
                    using var response = await client.GetAsync(path, _stop.Token);
                }
                catch (HttpRequestException)
                {
                    // Failures (a killed backend) are what the tests watch for, not a test error.
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }
}
