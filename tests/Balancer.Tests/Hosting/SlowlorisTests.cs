using System.Diagnostics;
using System.Globalization;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;

namespace Balancer.Tests.Hosting;

/// <summary>
/// Slowloris with the real tool (slowhttptest, Debian package): 800 connections that trickle header
/// lines and never finish, for 20 s, against the default limits, while a normal client keeps working.
/// </summary>
/// <remarks>
/// The defaults make it harmless: Kestrel holds 800 idle connections cheaply (the proxy's limit is
/// 10 000; 800 would starve clients only with a limit below it), and closes each one 10 s after its
/// first byte (RequestHeadersTimeout). slowhttptest does not reopen closed connections, so when a wave
/// is closed a new one of 800 starts, until the 20 s are over. slowhttptest runs with its open-file limit
/// raised to the hard limit (800 sockets do not fit a soft limit of 1024 with room to spare); the test
/// host is .NET, which raises its own at start.
/// </remarks>
[Collection(IntegrationCollection.Name)]
public sealed class SlowlorisTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private const int SlowConnections = 800;
    private static readonly TimeSpan Attack = TimeSpan.FromSeconds(20);
    private readonly string _directory = Directory.CreateTempSubdirectory("slowloris-").FullName;

    [Fact]
    public async Task Slowhttptest800Connections20s_NormalClientSeesNoFailure_P99Under1s()
    {
        await using var lb = await BalancerFixture.StartAsync();
        var started = Stopwatch.StartNew();
        var attack = Task.Run(() => AttackAsync(lb.ProxyAddress, started));
        var connections = lb.App.Services.GetRequiredService<Balancer.Hosting.ProxyConnections>();
        await Poll.UntilAsync(() => connections.Open >= SlowConnections, TimeSpan.FromSeconds(10), $"{SlowConnections} slow connections open at the balancer");

        // Two normal clients during the rest of the attack: one on a keep-alive connection, one opening
        // a new connection for every request (it must still get a slot and an accept).
        var keepAlive = NormalClientAsync(new HttpClient { BaseAddress = lb.ProxyAddress, Timeout = TimeSpan.FromSeconds(10) }, started);
        var fresh = NormalClientAsync(new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.Zero }) { BaseAddress = lb.ProxyAddress, Timeout = TimeSpan.FromSeconds(10) }, started);
        var results = await Task.WhenAll(keepAlive, fresh);
        var waves = await attack;

        var latencies = results.SelectMany(r => r.Latencies).Order().ToArray();
        var failures = results.SelectMany(r => r.Failures).ToList();
        Assert.True(failures.Count == 0, $"{failures.Count} failed: {string.Join("; ", failures.Take(5))}");
        Assert.True(latencies.Length > 100, $"only {latencies.Length} normal requests in {Attack.TotalSeconds} s");
        var p99 = latencies[(int)Math.Ceiling(latencies.Length * 0.99) - 1];
        output.WriteLine($"normal client: {latencies.Length} requests, 0 failed, p50 {latencies[latencies.Length / 2]:0.0} ms, p99 {p99:0.0} ms, max {latencies[^1]:0.0} ms; " +
                         $"slowhttptest waves: {string.Join(", ", waves.Select(w => $"{w.PeakConnected} connected at peak, {w.Seconds} s"))}");
        Assert.True(p99 < 1000, $"p99 {p99:0} ms over {latencies.Length} requests");

        // slowhttptest's own record: the first wave held all 800 at once, and the balancer (not the tool) ended it.
        var first = waves[0];
        Assert.True(first.PeakConnected >= SlowConnections, $"only {first.PeakConnected} slow connections were up at once");
        Assert.Contains("No open connections left", first.Output, StringComparison.Ordinal);
        Assert.InRange(first.Seconds, 9, 19);
        Assert.Equal(0, connections.Rejected);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static async Task<(List<double> Latencies, List<string> Failures)> NormalClientAsync(HttpClient client, Stopwatch started)
    {
        using (client)
        {
            var latencies = new List<double>();
            var failures = new List<string>();
            while (started.Elapsed < Attack)
            {
                var sent = Stopwatch.GetTimestamp();
                try
                {
                    using var response = await client.GetAsync("/api/products?limit=5");
                    await response.Content.ReadAsByteArrayAsync();
                    if (!response.IsSuccessStatusCode)
                    {
                        failures.Add($"{(int)response.StatusCode}");
                    }
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    failures.Add(e.Message);
                }

                latencies.Add(Stopwatch.GetElapsedTime(sent).TotalMilliseconds);
                // Paced like a user, not a load generator: the point is how a normal client fares.
                await Task.Delay(20);
            }

            return (latencies, failures);
        }
    }

    private async Task<List<Wave>> AttackAsync(Uri target, Stopwatch started)
    {
        var waves = new List<Wave>();
        while (started.Elapsed < Attack - TimeSpan.FromSeconds(1))
        {
            var seconds = Math.Max(1, (int)Math.Ceiling((Attack - started.Elapsed).TotalSeconds));
            var prefix = Path.Combine(_directory, $"wave{waves.Count}");
            var command = $"ulimit -n $(ulimit -Hn) 2>/dev/null; exec slowhttptest -H -c {SlowConnections} -r 400 -i 5 -x 24 -p 3 -l {seconds} -u {target} -g -o {prefix}";
            var result = Deployment.Repo.Run("sh", ["-c", command]);
            Assert.True(result.ExitCode == 0, $"slowhttptest failed ({result}); ./test.sh installs it");
            waves.Add(Wave.Read(prefix + ".csv", result.Stdout + result.Stderr));
        }

        return waves;
    }

    /// <summary>One slowhttptest run: its CSV (seconds, closed, pending, connected, ...) and what it printed.</summary>
    private sealed record Wave(int PeakConnected, int Seconds, string Output)
    {
        public static Wave Read(string csv, string output)
        {
            var rows = File.ReadAllLines(csv).Skip(1).Select(l => l.Split(',')).Where(f => f.Length >= 4).ToList();
            Assert.NotEmpty(rows);
            return new Wave(
                rows.Max(f => int.Parse(f[3], CultureInfo.InvariantCulture)),
                rows.Max(f => int.Parse(f[0], CultureInfo.InvariantCulture)),
                output);
        }
    }
}
