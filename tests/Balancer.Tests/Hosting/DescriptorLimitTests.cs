using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;
using Xunit.Abstractions;

namespace Balancer.Tests.Hosting;

/// <summary>
/// The real balancer process under a low open-file limit (<c>prlimit --nofile=1024:1024</c>), with more
/// client connections held open than the limit allows.
/// </summary>
[Collection(IntegrationCollection.Name)]
public sealed partial class DescriptorLimitTests(ITestOutputHelper output) : IAsyncDisposable
{
    private const int OpenFileLimit = 1024;
    private readonly string _directory = Directory.CreateTempSubdirectory("balancer-nofile-").FullName;
    private readonly List<BackendHost> _backends = [];
    private readonly List<Socket> _held = [];

    [Fact]
    public async Task DefaultLimit_MoreConnectionsThanDescriptors_ProcessLives_ManagementAnswers_NoDestinationDown_ServesAgainAfter()
    {
        await using var balancer = await StartAsync(configured: null);
        var (proxy, management) = await balancer.ListenersAsync(TimeSpan.FromSeconds(60));
        var limit = int.Parse(Limit().Match(balancer.Output).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(limit, 50, OpenFileLimit / 2);

        await HoldAndCheckAsync(balancer, proxy, management, connections: limit + 300, limit);
    }

    [Fact]
    public async Task ConfiguredLimitTooLarge_WarnsWithBothNumbers_UsesWhatFits_ProcessLives()
    {
        await using var balancer = await StartAsync(configured: 2000);
        var (proxy, management) = await balancer.ListenersAsync(TimeSpan.FromSeconds(60));
        var warning = DoesNotFit().Match(balancer.Output);
        Assert.True(warning.Success, balancer.Output);
        Assert.Equal(OpenFileLimit.ToString(System.Globalization.CultureInfo.InvariantCulture), warning.Groups[2].Value);
        var fits = int.Parse(warning.Groups[3].Value, System.Globalization.CultureInfo.InvariantCulture);

        await HoldAndCheckAsync(balancer, proxy, management, connections: 1200, fits);
    }

    public async ValueTask DisposeAsync()
    {
        CloseHeld();
        foreach (var backend in _backends)
        {
            await backend.DisposeAsync();
        }

        Directory.Delete(_directory, recursive: true);
    }

    /// <summary>
    /// Opens <paramref name="connections"/> proxy connections, each sending one request and then staying open
    /// and idle (a client connection and its backend connection: two descriptors each), and checks the
    /// balancer while they are held and after they close.
    /// </summary>
    private async Task HoldAndCheckAsync(BalancerProcess balancer, Uri proxy, Uri management, int connections, int limit)
    {
        // Setting up may be slow on a loaded machine (first requests of a new process); the checks below are not.
        using (var setup = new HttpClient { Timeout = TimeSpan.FromSeconds(10) })
        {
            await Poll.UntilAsync(async () => (await HealthAsync(setup, management)).All(h => h == "Up"), TimeSpan.FromSeconds(20), "every destination Up");
        }

        var answers = new Dictionary<string, int>();
        for (var i = 0; i < connections; i++)
        {
            var (socket, answer) = await RequestAsync(proxy);
            answers[answer] = answers.GetValueOrDefault(answer) + 1;
            if (socket is not null)
            {
                _held.Add(socket);
            }
        }

        output.WriteLine($"limit {limit}; {connections} connections: {string.Join(", ", answers.OrderBy(a => a.Key).Select(a => $"{a.Key} x {a.Value}"))}");
        Assert.False(balancer.HasExited, balancer.Output);
        // Every client got an answer: served up to the limit, then turned away with 503.
        Assert.Equal(connections, answers.GetValueOrDefault("200") + answers.GetValueOrDefault("503"));
        Assert.InRange(answers.GetValueOrDefault("200"), 1, limit);

        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(1) };
        var clock = Stopwatch.StartNew();
        Assert.Equal("ok\n", await client.GetStringAsync(new Uri(management, "/healthz")));
        var healthz = clock.Elapsed;
        clock.Restart();
        using (var refused = await client.GetAsync(proxy))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        }

        var newClient = clock.Elapsed;
        output.WriteLine($"while held: /healthz {healthz.TotalMilliseconds:0} ms, new proxy client 503 in {newClient.TotalMilliseconds:0} ms");
        using var metrics = await client.GetAsync(new Uri(management, "/metrics"));
        Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);
        Assert.All(await HealthAsync(client, management), health => Assert.Equal("Up", health));

        Assert.DoesNotContain("Out of memory", balancer.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Up -> Down", balancer.Output, StringComparison.Ordinal);

        CloseHeld();
        clock.Restart();
        await Poll.UntilAsync(
            async () =>
            {
                try
                {
                    using var response = await client.GetAsync(proxy);
                    return response.StatusCode == HttpStatusCode.OK;
                }
                catch (TaskCanceledException)
                {
                    // Slower than 1 s: not served normally yet.
                    return false;
                }
            },
            TimeSpan.FromSeconds(5),
            "a proxied 200 after the connections closed");
        output.WriteLine($"served again {clock.Elapsed.TotalMilliseconds:0} ms after the connections closed");
        Assert.False(balancer.HasExited, balancer.Output);
    }

    private static async Task<List<string>> HealthAsync(HttpClient client, Uri management)
    {
        var status = JsonNode.Parse(await client.GetStringAsync(new Uri(management, "/status")))!;
        return [.. status["clusters"]![0]!["destinations"]!.AsArray().Select(d => (string)d!["health"]!)];
    }

    /// <summary>One GET on a new connection; the socket is kept open (idle) unless the answer closed it.</summary>
    private static async Task<(Socket? Socket, string Status)> RequestAsync(Uri proxy)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(proxy.Host, proxy.Port);
            await socket.SendAsync(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: test\r\n\r\n"));
            var buffer = new byte[4096];
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            var read = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
            var text = Encoding.ASCII.GetString(buffer, 0, read);
            var status = text.StartsWith("HTTP/1.1 ", StringComparison.Ordinal) ? text[9..12] : read == 0 ? "closed" : "garbled";
            if (status == "200")
            {
                return (socket, status);
            }

            if (status == "503" && !text.Contains("too many connections are open", StringComparison.Ordinal))
            {
                status = "503 " + text[(text.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..].Trim();
            }

            socket.Dispose();
            return (null, status);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            socket.Dispose();
            return (null, e.GetType().Name);
        }
    }

    private void CloseHeld()
    {
        foreach (var socket in _held)
        {
            socket.Dispose();
        }

        _held.Clear();
    }

    private async Task<BalancerProcess> StartAsync(int? configured)
    {
        var destinations = new JsonObject();
        foreach (var name in new[] { "A", "B", "C" })
        {
            var backend = await BackendHost.StartAsync(name);
            _backends.Add(backend);
            destinations[name] = new JsonObject { ["Address"] = backend.Address.ToString() };
        }

        var balancer = new JsonObject
        {
            ["Listen"] = "http://127.0.0.1:0",
            ["Management"] = new JsonObject { ["Listen"] = "http://127.0.0.1:0" },
        };
        if (configured is { } limit)
        {
            balancer["Limits"] = new JsonObject { ["MaxConcurrentConnections"] = limit };
        }

        var config = new JsonObject
        {
            ["Balancer"] = balancer,
            ["ReverseProxy"] = new JsonObject
            {
                ["Routes"] = new JsonObject { ["all"] = new JsonObject { ["ClusterId"] = "backends", ["Match"] = new JsonObject { ["Path"] = "{**catch-all}" } } },
                ["Clusters"] = new JsonObject
                {
                    ["backends"] = new JsonObject
                    {
                        ["LoadBalancingPolicy"] = "RoundRobin",
                        ["HealthCheck"] = new JsonObject
                        {
                            ["Active"] = new JsonObject { ["Enabled"] = true, ["Interval"] = "00:00:01", ["Timeout"] = "00:00:01", ["Policy"] = "ConsecutiveFailures", ["Path"] = "/health" },
                            ["Passive"] = new JsonObject { ["Enabled"] = true, ["Policy"] = "FirstFailure" },
                        },
                        ["Metadata"] = new JsonObject { ["ConsecutiveFailuresHealthPolicy.Threshold"] = "1" },
                        ["Destinations"] = destinations,
                    },
                },
            },
        };
        var path = Path.Combine(_directory, "balancer.json");
        await File.WriteAllTextAsync(path, config.ToJsonString());
        var nofile = $"--nofile={OpenFileLimit}:{OpenFileLimit}";
        return BalancerProcess.Start(["--config", path], null, ["prlimit", nofile]);
    }

    [GeneratedRegex(@"proxy connections limited to (\d+)")]
    private static partial Regex Limit();

    [GeneratedRegex(@"MaxConcurrentConnections is (\d+), which needs up to \d+ open files, but the open-file limit is (\d+): at most (\d+) proxy connections fit")]
    private static partial Regex DoesNotFit();
}
