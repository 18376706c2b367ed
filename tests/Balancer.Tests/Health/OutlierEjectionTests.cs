using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;
using Xunit.Abstractions;
using static Balancer.Tests.Health.HealthTestConfig;

namespace Balancer.Tests.Health;

/// <summary>A real misbehaving destination: it answers its probes, but cuts every response mid-body.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class OutlierEjectionTests(ITestOutputHelper output)
{
    [Fact]
    public async Task OneOfFourResetsEveryResponseMidBody_TenRequestsASecondFor30s_AtMostFiveBrokenResponses()
    {
        await using var broken = ResettingBackend.Start(bytesBeforeReset: 1000);
        await using var lb = await BalancerFixture.StartAsync(edit: ActiveAndPassive(reactivation: "00:00:10", cluster: c =>
            c["Destinations"]!["D"] = new JsonObject { ["Address"] = broken.Address.ToString() }));
        await WaitAllUpAsync(lb);
        await WaitForHealthAsync(lb, "D", "Up", TimeSpan.FromSeconds(10));

        var (ok, cut, other) = (0, 0, 0);
        var otherStatuses = new List<string>();
        using var client = new HttpClient { BaseAddress = lb.ProxyAddress, Timeout = TimeSpan.FromSeconds(10) };
        using var pace = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(30) && await pace.WaitForNextTickAsync())
        {
            try
            {
                using var response = await client.GetAsync("/");
                await response.Content.ReadAsByteArrayAsync();
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    ok++;
                }
                else
                {
                    other++;
                    otherStatuses.Add($"{(int)response.StatusCode} {string.Join(",", response.Headers.TryGetValues("X-Backend", out var by) ? by : [])}");
                }
            }
            catch (HttpRequestException)
            {
                cut++;
            }
        }

        var downs = await MetricAsync(lb, "balancer_destination_health_transitions_total{cluster=\"backends\",destination=\"D\",to=\"down\"}") ?? 0;
        var truncated = await MetricAsync(lb, "balancer_destination_truncated_responses_total{cluster=\"backends\",destination=\"D\"}");
        output.WriteLine($"30 s at 10/s: {ok} ok, {cut} broken, {other} other; D served {broken.Served} requests, went down {downs} times; truncated counted {truncated}; other answers: {string.Join("; ", otherStatuses)}");

        Assert.Equal(0, other);
        Assert.InRange(cut, 1, 5);
        // Every cut body is counted; a cut that came before any byte reached the client was retried elsewhere.
        Assert.Equal(broken.Served, truncated);
        Assert.InRange(cut, 1, broken.Served);
    }

    /// <summary>
    /// Answers <c>/health</c> with 200 and every other request with a 200 announcing 5000 bytes, of which it
    /// sends <c>bytesBeforeReset</c> and then resets the connection.
    /// </summary>
    private sealed class ResettingBackend : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        private readonly int _bytesBeforeReset;
        private Task _accepting = Task.CompletedTask;
        private int _served;

        private ResettingBackend(int bytesBeforeReset) => _bytesBeforeReset = bytesBeforeReset;

        public Uri Address => new($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/");

        /// <summary>Requests other than probes, each answered with a cut body.</summary>
        public int Served => Volatile.Read(ref _served);

        public static ResettingBackend Start(int bytesBeforeReset)
        {
            var backend = new ResettingBackend(bytesBeforeReset);
            backend._listener.Start();
            backend._accepting = backend.AcceptAsync();
            return backend;
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            await _accepting;
            _stop.Dispose();
        }

        private async Task AcceptAsync()
        {
            var connections = new List<Task>();
            try
            {
                while (true)
                {
                    var socket = await _listener.AcceptSocketAsync(_stop.Token);
                    connections.Add(ServeAsync(socket));
                }
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }

            await Task.WhenAll(connections);
        }

        private async Task ServeAsync(Socket socket)
        {
            using (socket)
            {
                try
                {
                    var buffer = new byte[8192];
                    var received = new StringBuilder();
                    while (true)
                    {
                        var read = await socket.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                        if (read == 0)
                        {
                            return;
                        }

                        received.Append(Encoding.ASCII.GetString(buffer, 0, read));
                        var text = received.ToString();
                        var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
                        if (end < 0)
                        {
                            continue;
                        }

                        received.Remove(0, end + 4);
                        var path = text.Split(' ', 3)[1];
                        if (path.StartsWith("/health", StringComparison.Ordinal))
                        {
                            await socket.SendAsync(Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), SocketFlags.None, _stop.Token);
                            continue;
                        }

                        Interlocked.Increment(ref _served);
                        var head = Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 5000\r\n\r\n");
                        await socket.SendAsync(head, SocketFlags.None, _stop.Token);
                        await socket.SendAsync(new byte[_bytesBeforeReset], SocketFlags.None, _stop.Token);
                        // A reset, not a close: the proxy sees the body cut, as when a process crashes mid-response.
                        socket.LingerState = new LingerOption(true, 0);
                        return;
                    }
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                }
            }
        }
    }
}
