using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;

namespace Balancer.Tests.AccessLog;

/// <summary>The access log of a real balancer in front of real backends, read back from the file it wrote.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class AccessLogTests : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);
    private readonly string _directory = Directory.CreateTempSubdirectory("balancer-access-log-").FullName;

    [Fact]
    public async Task ThreeHundredMixedRequests_ExactlyOneLineEach_WithTheirFields()
    {
        var log = Path.Combine(_directory, "access.log");
        await using var lb = await BalancerFixture.StartAsync(edit: c =>
        {
            With(c, log, new JsonObject { ["MaxRequestBodySize"] = 65536 });
            // A destination that failed stays out for the whole test: which requests are retried is exact.
            c["ReverseProxy"]!["Clusters"]!["backends"]!["HealthCheck"] = new JsonObject { ["Passive"] = new JsonObject { ["Enabled"] = true, ["ReactivationPeriod"] = "00:05:00" } };
            // All three die in turn here; the default cap would keep two of them in rotation.
            c["Balancer"]!["OutlierDetection"] = new JsonObject { ["MaxEjectionPercent"] = 100 };
        });
        var started = DateTime.UtcNow;
        var expected = new Dictionary<int, Action<JsonObject>>();
        var n = 0;

        // 200 GETs from ten client addresses, each with a query that must be logged as sent.
        var clients = Enumerable.Range(1, 10).Select(i => new SourceAddressClient(IPAddress.Parse($"127.0.7.{i}"))).ToList();
        for (var i = 0; i < 200; i++, n++)
        {
            var source = $"127.0.7.{(i % 10) + 1}";
            using var response = await clients[i % 10].GetAsync(new Uri(lb.ProxyAddress, $"/?i={n}&q=a+b%20c"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var backend = response.Headers.GetValues("X-Backend").Single();
            var length = response.Content.Headers.ContentLength ?? (await response.Content.ReadAsByteArrayAsync()).Length;
            var target = $"/?i={n}&q=a+b%20c";
            expected[n] = line =>
            {
                Assert.Equal(source, (string?)line["client"]);
                Assert.Equal("GET", (string?)line["method"]);
                Assert.Equal(target, (string?)line["path"]);
                Assert.Equal("HTTP/1.1", (string?)line["protocol"]);
                Assert.Equal(200, (int)line["status"]!);
                Assert.Equal(backend, (string?)line["destination"]);
                Assert.Equal(0, (long)line["bytesIn"]!);
                Assert.Equal(length, (long)line["bytesOut"]!);
                Assert.Equal(0, (int)line["retries"]!);
                Assert.Null(line["error"]);
            };
        }

        // 20 uploads: the body bytes sent to the backend are the request's Content-Length.
        for (var i = 0; i < 20; i++, n++)
        {
            using var content = Upload(1000 + i);
            var sent = await ContentLengthAsync(content);
            using var response = await lb.Client.PostAsync($"/api/upload?i={n}", content);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            expected[n] = line =>
            {
                Assert.Equal("POST", (string?)line["method"]);
                Assert.Equal("127.0.0.1", (string?)line["client"]);
                Assert.Equal(sent, (long)line["bytesIn"]!);
                Assert.Equal(200, (int)line["status"]!);
            };
        }

        // Too large: answered by the balancer, nothing forwarded.
        using (var content = new ByteArrayContent(new byte[70_000]))
        {
            using var response = await lb.Client.PostAsync($"/api/upload?i={n}", content);
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
            expected[n++] = line =>
            {
                Assert.Equal(413, (int)line["status"]!);
                Assert.Null((string?)line["destination"]);
                Assert.Equal(0, (long)line["bytesIn"]!);
                Assert.True((long)line["bytesOut"]! > 0);
            };
        }

        using (var head = new HttpRequestMessage(HttpMethod.Head, $"/?i={n}"))
        {
            // The backends route GET only: the answer is theirs, a 405.
            using var response = await lb.Client.SendAsync(head);
            Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
            expected[n++] = line =>
            {
                Assert.Equal("HEAD", (string?)line["method"]);
                Assert.Equal(405, (int)line["status"]!);
                Assert.Equal(0, (long)line["bytesOut"]!);
            };
        }

        // Duration runs to the last byte: a response delayed 300 ms takes at least that.
        using (var response = await lb.Client.GetAsync($"/delay/300?i={n}"))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            expected[n++] = line => Assert.True((double)line["durationMs"]! >= 300, $"durationMs {line["durationMs"]}");
        }

        for (var i = 0; i < 4; i++, n++)
        {
            using var response = await lb.Client.GetAsync($"/no/such/page?i={n}");
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            expected[n] = line => Assert.Equal(404, (int)line["status"]!);
        }

        // C dies; no probes: the request picked for it fails over, and is the only one retried.
        await lb.Backend("C").KillAsync();
        var firstAfterKill = n;
        for (var i = 0; i < 10; i++, n++)
        {
            using var response = await lb.Client.GetAsync($"/?i={n}");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var backend = response.Headers.GetValues("X-Backend").Single();
            expected[n] = line =>
            {
                Assert.Equal(200, (int)line["status"]!);
                Assert.Equal(backend, (string?)line["destination"]);
                Assert.Null(line["error"]);
            };
        }

        // A and B die too: every request gets the balancer's 503, the first after trying both.
        await lb.Backend("A").KillAsync();
        await lb.Backend("B").KillAsync();
        var firstUnavailable = n;
        while (n < 300)
        {
            using var response = await lb.Client.GetAsync($"/?i={n}");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
            expected[n++] = line => Assert.Equal(503, (int)line["status"]!);
        }

        await Poll.UntilAsync(async () => (await lb.MetricsAsync()).Value("balancer_access_log_lines_total") >= 300, Deadline, "300 lines written");
        var lines = ReadLines(log);
        Assert.Equal(300, lines.Count);
        var byRequest = lines.ToDictionary(l => int.Parse(Query((string)l["path"]!)["i"]!, CultureInfo.InvariantCulture));
        Assert.Equal(Enumerable.Range(0, 300), byRequest.Keys.Order());
        foreach (var (i, check) in expected)
        {
            var line = byRequest[i];
            var time = DateTime.ParseExact((string)line["time"]!, "yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal);
            Assert.InRange(time, started.AddSeconds(-1), DateTime.UtcNow);
            // The 413 is answered before routing: no cluster.
            Assert.Equal((int)line["status"]! == 413 ? null : "backends", (string?)line["cluster"]);
            Assert.True((double)line["durationMs"]! >= 0);
            check(line);
        }

        Assert.Equal(1, byRequest.Where(p => p.Key >= firstAfterKill && p.Key < firstAfterKill + 10).Sum(p => (int)p.Value["retries"]!));
        Assert.Equal(1, (int)byRequest[firstUnavailable]["retries"]!);
        Assert.Equal(2, byRequest.Values.Count(l => (int)l["retries"]! > 0));
        Assert.Equal(0, (await lb.MetricsAsync()).Value("balancer_access_log_dropped_total", ("reason", "buffer_full")));
        clients.ForEach(c => c.Dispose());
    }

    [Fact]
    public async Task TransportFailure_WithoutRetry_IsLoggedWithItsError()
    {
        var log = Path.Combine(_directory, "access.log");
        await using var lb = await BalancerFixture.StartAsync(edit: c =>
        {
            c["Balancer"]!["AccessLog"] = new JsonObject { ["Path"] = log };
            c["Balancer"]!["Retry"] = new JsonObject { ["MaxAttempts"] = 0 };
        });
        await lb.Backend("B").KillAsync();

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 3; i++)
        {
            using var response = await lb.Client.GetAsync($"/?i={i}");
            statuses.Add(response.StatusCode);
        }

        Assert.Single(statuses, HttpStatusCode.BadGateway);
        await Poll.UntilAsync(() => ReadLines(log).Count == 3, Deadline, "three lines");
        var failed = Assert.Single(ReadLines(log), l => (int)l["status"]! == 502);
        Assert.Equal("B", (string?)failed["destination"]);
        Assert.Equal("refused", (string?)failed["error"]);
        Assert.All(ReadLines(log).Where(l => (int)l["status"]! == 200), l => Assert.Null(l["error"]));
    }

    [Fact]
    public async Task TurnedOn_Moved_AndOff_ByReload_ALineReachesTheFileWithinASecond()
    {
        var first = Path.Combine(_directory, "first.log");
        var second = Path.Combine(_directory, "second.log");
        var third = Path.Combine(_directory, "third.log");
        await using var lb = await BalancerFixture.StartAsync();
        (await lb.Client.GetAsync("/?i=off")).Dispose();

        lb.WriteConfig(With(lb.Config("RoundRobin"), first));
        await WaitForReloadAsync(lb, 1);
        (await lb.Client.GetAsync("/?i=1")).Dispose();
        var sent = Stopwatch.StartNew();
        await Poll.UntilAsync(() => File.Exists(first) && ReadLines(first).Count == 1, Deadline, "the line in the first file");
        Assert.True(sent.Elapsed < TimeSpan.FromSeconds(1), $"the line took {sent.Elapsed.TotalMilliseconds:0} ms to reach the file");

        lb.WriteConfig(With(lb.Config("RoundRobin"), second));
        await WaitForReloadAsync(lb, 2);
        (await lb.Client.GetAsync("/?i=2")).Dispose();
        await Poll.UntilAsync(() => File.Exists(second) && ReadLines(second).Count == 1, Deadline, "the line in the second file");

        lb.WriteConfig("RoundRobin");
        await WaitForReloadAsync(lb, 3);
        (await lb.Client.GetAsync("/?i=unlogged")).Dispose();
        lb.WriteConfig(With(lb.Config("RoundRobin"), third));
        await WaitForReloadAsync(lb, 4);
        (await lb.Client.GetAsync("/?i=3")).Dispose();
        await Poll.UntilAsync(() => File.Exists(third) && ReadLines(third).Count == 1, Deadline, "the line in the third file");

        Assert.Equal(["/?i=1"], ReadLines(first).Select(l => (string?)l["path"]));
        Assert.Equal(["/?i=2"], ReadLines(second).Select(l => (string?)l["path"]));
        Assert.Equal(["/?i=3"], ReadLines(third).Select(l => (string?)l["path"]));
    }

    [Fact]
    public async Task FullBuffer_DropsLines_NotRequests()
    {
        // A FIFO nobody reads yet: opening it blocks the writer, as a hung disk would.
        var fifo = Path.Combine(_directory, "access.fifo");
        using (var mkfifo = Process.Start("mkfifo", [fifo]))
        {
            await mkfifo.WaitForExitAsync();
            Assert.Equal(0, mkfifo.ExitCode);
        }

        await using var lb = await BalancerFixture.StartAsync(edit: c => c["Balancer"]!["AccessLog"] = new JsonObject { ["Path"] = fifo, ["BufferLines"] = 10 });
        var read = new List<string>();
        try
        {
            for (var i = 0; i < 50; i++)
            {
                using var response = await lb.Client.GetAsync($"/?i={i}");
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }

            Assert.Equal(40, (await lb.MetricsAsync()).Value("balancer_access_log_dropped_total", ("reason", "buffer_full")));
        }
        finally
        {
            // The reader unblocks the writer, which then writes what it kept.
            using var reader = new StreamReader(new FileStream(fifo, FileMode.Open, FileAccess.Read));
            while (read.Count < 10 && await reader.ReadLineAsync().WaitAsync(Deadline) is { } line)
            {
                read.Add(line);
            }
        }

        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"/?i={i}"), read.Select(l => (string?)JsonNode.Parse(l)!["path"]));
        await Poll.UntilAsync(async () => (await lb.MetricsAsync()).Value("balancer_access_log_lines_total") == 10, Deadline, "ten lines counted as written");
    }

    [Fact]
    public async Task Sighup_AfterTheFileWasMoved_StartsANewFile_NoLineLost()
    {
        var backends = new List<BackendHost>();
        try
        {
            var destinations = new JsonObject();
            foreach (var name in new[] { "A", "B", "C" })
            {
                var backend = await BackendHost.StartAsync(name);
                backends.Add(backend);
                destinations[name] = new JsonObject { ["Address"] = backend.Address.ToString() };
            }

            var log = Path.Combine(_directory, "access.log");
            var rotated = log + ".1";
            var config = Path.Combine(_directory, "balancer.json");
            File.WriteAllText(config, new JsonObject
            {
                ["Balancer"] = new JsonObject
                {
                    ["Listen"] = "http://127.0.0.1:0",
                    ["Management"] = new JsonObject { ["Listen"] = "http://127.0.0.1:0" },
                    ["AccessLog"] = new JsonObject { ["Path"] = log },
                },
                ["ReverseProxy"] = new JsonObject
                {
                    ["Routes"] = new JsonObject { ["all"] = new JsonObject { ["ClusterId"] = "backends", ["Match"] = new JsonObject { ["Path"] = "{**catch-all}" } } },
                    ["Clusters"] = new JsonObject { ["backends"] = new JsonObject { ["Destinations"] = destinations } },
                },
            }.ToJsonString());
            await using var balancer = BalancerProcess.Start("--config", config);
            var (proxy, _) = await balancer.ListenersAsync(TimeSpan.FromSeconds(60));
            using var client = new HttpClient { BaseAddress = proxy };

            // Requests keep coming while the file is moved and the signal arrives, as in production.
            using var stop = new CancellationTokenSource();
            var sent = 0;
            var traffic = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    using var response = await client.GetAsync($"/?i={sent}");
                    Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                    Interlocked.Increment(ref sent);
                }
            });
            await Poll.UntilAsync(() => File.Exists(log) && ReadLines(log).Count >= 20, Deadline, "lines in the first file");
            File.Move(log, rotated);
            var atMove = Volatile.Read(ref sent);
            // Until the signal, lines still go to the moved file, as with NGINX.
            await Poll.UntilAsync(() => Volatile.Read(ref sent) >= atMove + 20, Deadline, "more requests after the move");
            balancer.Signal("HUP");
            await Poll.UntilAsync(() => File.Exists(log) && ReadLines(log).Count >= 20, Deadline, "lines in the new file");
            await stop.CancelAsync();
            await traffic;

            Assert.False(balancer.HasExited);
            var other = ReadLines(rotated).Count(l => !((string)l["path"]!).StartsWith("/?i=", StringComparison.Ordinal));
            await Poll.UntilAsync(() => ReadLines(rotated).Count + ReadLines(log).Count == sent + other, Deadline, $"{sent} lines in both files");
            // The start-up check of the listeners asked for /healthz through the proxy too.
            var paths = ReadLines(rotated).Concat(ReadLines(log)).Select(l => (string)l["path"]!).Where(p => p.StartsWith("/?i=", StringComparison.Ordinal)).ToList();
            Assert.Equal(Enumerable.Range(0, sent).Select(i => $"/?i={i}"), paths.OrderBy(p => int.Parse(p[4..], CultureInfo.InvariantCulture)));
        }
        finally
        {
            foreach (var backend in backends)
            {
                await backend.DisposeAsync();
            }
        }
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    internal static List<JsonObject> ReadLines(string path)
    {
        if (!File.Exists(path))
        {
            return [];
        }

        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        var text = reader.ReadToEnd();
        // A line is complete once its newline is written; a torn last line is still on its way.
        var complete = text[..(text.LastIndexOf('\n') + 1)];
        return [.. complete.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject())];
    }

    private static JsonObject With(JsonObject config, string log, JsonObject? limits = null)
    {
        config["Balancer"]!["AccessLog"] = new JsonObject { ["Path"] = log };
        if (limits is not null)
        {
            config["Balancer"]!["Limits"] = limits;
        }

        return config;
    }

    private static async Task WaitForReloadAsync(BalancerFixture lb, int successes) =>
        await Poll.UntilAsync(async () => (await lb.MetricsAsync()).Value("balancer_config_reloads_total", ("result", "success")) >= successes, Deadline, $"reload {successes}");

    private static System.Collections.Specialized.NameValueCollection Query(string target) =>
        System.Web.HttpUtility.ParseQueryString(target[(target.IndexOf('?') + 1)..]);

    private static MultipartFormDataContent Upload(int bytes)
    {
        var file = new ByteArrayContent(new byte[bytes]);
        file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        return new MultipartFormDataContent { { file, "file", "data.bin" } };
    }

    private static async Task<long> ContentLengthAsync(HttpContent content)
    {
        await content.LoadIntoBufferAsync();
        return content.Headers.ContentLength!.Value;
    }
}
