using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;
using Microsoft.AspNetCore.Hosting;

namespace Balancer.Tests.Hosting;

/// <summary>SIGTERM to the real balancer process, as systemd, Docker and Kubernetes send it.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class GracefulShutdownTests : IAsyncDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("balancer-shutdown-").FullName;
    private readonly List<BackendHost> _backends = [];

    [Fact]
    public async Task Sigterm_With30SlowRequestsInFlight_EveryOneCompletes200_NewConnectionsRefused_ExitsZero()
    {
        const int slow = 30;
        var hold = new HoldRequests();
        await using var balancer = await StartAsync(shutdownTimeout: "00:00:15", drainDelay: "00:00:00", configureBackends: b => b.Services.AddSingleton<IStartupFilter>(hold));
        var (proxy, management) = await balancer.ListenersAsync(TimeSpan.FromSeconds(60));
        using var client = new HttpClient { BaseAddress = proxy, Timeout = TimeSpan.FromSeconds(60) };
        var servedBefore = _backends.Sum(b => b.State.Served);
        // One connection each, held by the backends until released, so all are in flight together when the signal
        // comes however long a busy machine takes to open thirty connections; then 0 to 0.9 s each.
        var requests = Enumerable.Range(0, slow).Select(i => client.GetAsync($"/delay/{30 * i}")).ToList();
        await Poll.UntilAsync(async () => await InFlightAsync(management) == slow, TimeSpan.FromSeconds(30), $"{slow} requests in flight");

        balancer.Signal("TERM");
        var signalled = Stopwatch.StartNew();

        // Listeners close at once: a new connection is refused while the slow requests still run.
        await Poll.UntilAsync(async () => !await AcceptsConnectionAsync(proxy), TimeSpan.FromSeconds(2), "new connections to be refused");
        Assert.DoesNotContain(requests, r => r.IsCompleted);
        hold.Release();
        var responses = await Task.WhenAll(requests);
        foreach (var response in responses)
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.True(response.Headers.Contains("X-Backend"));
            response.Dispose();
        }

        Assert.Equal(0, await balancer.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        Assert.True(signalled.Elapsed < TimeSpan.FromSeconds(15), $"exit took {signalled.Elapsed.TotalSeconds:0.0} s, the whole drain timeout");
        Assert.Contains($"waiting up to 15 s for {slow} requests in flight to finish", balancer.Output, StringComparison.Ordinal);
        Assert.Equal(slow, _backends.Sum(b => b.State.Served) - servedBefore);
    }

    [Fact]
    public async Task Sigterm_RequestLongerThanTheDrainTimeout_IsCutAtTheTimeout_ExitsZero()
    {
        await using var balancer = await StartAsync(shutdownTimeout: "00:00:02", drainDelay: "00:00:00");
        var (proxy, management) = await balancer.ListenersAsync(TimeSpan.FromSeconds(60));
        using var client = new HttpClient { BaseAddress = proxy, Timeout = TimeSpan.FromSeconds(60) };
        var endless = Task.Run(async () =>
        {
            using var response = await client.GetAsync("/delay/60000");
            return response.StatusCode;
        });
        await Poll.UntilAsync(async () => await InFlightAsync(management) == 1, TimeSpan.FromSeconds(5), "the request in flight");

        balancer.Signal("TERM");
        var signalled = Stopwatch.StartNew();
        var exit = await balancer.WaitForExitAsync(TimeSpan.FromSeconds(20));

        Assert.Equal(0, exit);
        Assert.InRange(signalled.Elapsed, TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(10));
        await Assert.ThrowsAsync<HttpRequestException>(() => endless);
    }

    [Fact]
    public async Task Sigterm_ReadyzTurns503AtOnce_ProxyServesNewConnectionsThroughTheDrainDelay_ThenStopsAccepting()
    {
        var delay = TimeSpan.FromSeconds(4);
        await using var balancer = await StartAsync(shutdownTimeout: "00:00:05", drainDelay: "00:00:04");
        var (proxy, management) = await balancer.ListenersAsync(TimeSpan.FromSeconds(60));
        using var managementClient = new HttpClient { BaseAddress = management };
        await Poll.UntilAsync(async () => (await managementClient.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(10), "/readyz to answer 200");
        // A request in flight across the whole delay: it must be served, not cut.
        using var slowClient = new HttpClient { BaseAddress = proxy, Timeout = TimeSpan.FromSeconds(30) };
        var slow = slowClient.GetAsync("/delay/5000");
        await Poll.UntilAsync(async () => await InFlightAsync(management) == 1, TimeSpan.FromSeconds(5), "the slow request in flight");

        balancer.Signal("TERM");
        var signalled = Stopwatch.StartNew();

        await Poll.UntilAsync(
            async () => (await managementClient.GetAsync("/readyz")).StatusCode == HttpStatusCode.ServiceUnavailable,
            TimeSpan.FromSeconds(1),
            "/readyz to turn 503 after SIGTERM");
        Assert.Equal("not ready: shutting down: draining before exit\n", await (await managementClient.GetAsync("/readyz")).Content.ReadAsStringAsync());
        Assert.Equal("ok\n", await managementClient.GetStringAsync("/healthz"));

        // Every request on a fresh connection while the delay lasts is proxied.
        var served = 0;
        while (signalled.Elapsed < delay - TimeSpan.FromSeconds(1))
        {
            using var fresh = new HttpClient { BaseAddress = proxy };
            using var request = new HttpRequestMessage(HttpMethod.Get, "/") { Headers = { ConnectionClose = true } };
            using var response = await fresh.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            served++;
        }

        await Poll.UntilAsync(async () => !await AcceptsConnectionAsync(proxy), delay + TimeSpan.FromSeconds(3), "new connections to be refused after the drain delay");
        Assert.True(signalled.Elapsed >= delay, $"stopped accepting after {signalled.Elapsed.TotalSeconds:0.0} s, before the {delay.TotalSeconds} s drain delay");
        using (var response = await slow)
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.Equal(0, await balancer.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        Assert.True(served > 5, $"only {served} requests during the drain delay");
        Assert.Contains("SIGTERM received: /readyz answers 503; still serving for 4 s", balancer.Output, StringComparison.Ordinal);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var backend in _backends)
        {
            await backend.DisposeAsync();
        }

        Directory.Delete(_directory, recursive: true);
    }

    private async Task<BalancerProcess> StartAsync(string shutdownTimeout, string drainDelay, Action<WebApplicationBuilder>? configureBackends = null)
    {
        foreach (var name in new[] { "A", "B", "C" })
        {
            _backends.Add(await BackendHost.StartAsync(name, configure: configureBackends));
        }

        var config = ProcessConfig.For(_backends);
        config["Balancer"]!["ShutdownTimeout"] = shutdownTimeout;
        config["Balancer"]!["Shutdown"] = new JsonObject { ["DrainDelay"] = drainDelay };
        var path = Path.Combine(_directory, "balancer.json");
        await File.WriteAllTextAsync(path, config.ToJsonString());
        return BalancerProcess.Start("--config", path);
    }

    /// <summary>Holds a backend's <c>/delay</c> requests until <see cref="Release"/>, then lets them through; others pass.</summary>
    private sealed class HoldRequests : IStartupFilter
    {
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Release() => _released.TrySetResult();

        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use(async (context, nextMiddleware) =>
            {
                if (context.Request.Path.StartsWithSegments("/delay", StringComparison.Ordinal))
                {
                    await _released.Task.WaitAsync(context.RequestAborted);
                }

                await nextMiddleware(context);
            });
            next(app);
        };
    }

    private static async Task<int> InFlightAsync(Uri management)
    {
        using var client = new HttpClient { BaseAddress = management };
        var status = JsonNode.Parse(await client.GetStringAsync("/status"))!;
        return status["clusters"]![0]!["destinations"]!.AsArray().Sum(d => (int)d!["inFlight"]!);
    }

    private static async Task<bool> AcceptsConnectionAsync(Uri address)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(address.Host, address.Port);
            return true;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            return false;
        }
    }
}
