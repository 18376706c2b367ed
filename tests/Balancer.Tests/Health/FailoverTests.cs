using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Balancer.Health;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;
using Xunit.Abstractions;
using static Balancer.Tests.Health.HealthTestConfig;

namespace Balancer.Tests.Health;

[Collection(IntegrationCollection.Name)]
public sealed class FailoverTests(ITestOutputHelper output)
{
    private static readonly TimeSpan DetectionLimit = TimeSpan.FromSeconds(3);

    [Fact]
    public async Task KillOneOfThree_UnderSteadyLoad_NoClientFails_DownWithin3s_BackWithin3sOfRestart()
    {
        await using var lb = await BalancerFixture.StartAsync(edit: ActiveAndPassive());
        await WaitAllUpAsync(lb);
        Assert.Equal(1, await MetricAsync(lb, "balancer_destination_up{cluster=\"backends\",destination=\"B\"}"));
        var b = lb.Backend("B");

        var load = Stopwatch.StartNew();
        using var traffic = new SteadyTraffic(lb.Client, clients: 8);
        await Poll.UntilAsync(() => traffic.Succeeded >= 200, TimeSpan.FromSeconds(10), "traffic to flow");

        var down = Stopwatch.StartNew();
        await b.KillAsync();
        var killTook = down.Elapsed;
        await Poll.UntilAsync(async () =>
            await HealthAsync(lb, "B") == "Down"
            && await MetricAsync(lb, "balancer_destination_up{cluster=\"backends\",destination=\"B\"}") == 0,
            DetectionLimit, "B reported down");
        var detection = down.Elapsed;

        var up = Stopwatch.StartNew();
        await b.RestartAsync();
        var restartTook = up.Elapsed;
        // Serving again means requests reach the restarted process, counted by the process itself.
        await Poll.UntilAsync(() => b.State.Served > 0, DetectionLimit, "restarted B to serve a request");
        var recovery = up.Elapsed;
        await WaitForHealthAsync(lb, "B", "Up", DetectionLimit);
        Assert.Equal(1, await MetricAsync(lb, "balancer_destination_up{cluster=\"backends\",destination=\"B\"}"));

        // At least 5 s of load around the kill, so the failover is seen under steady traffic, not a blip.
        await Poll.UntilAsync(() => load.Elapsed >= TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(10), "5 s of load");
        var result = await traffic.StopAsync();
        var retries = await SumAsync(lb, "balancer_retries_total{cluster=\"backends\",destination=\"B\"");
        output.WriteLine($"requests ok={result.Succeeded} failed={result.Failed}; kill took {killTook.TotalMilliseconds:0} ms; " +
            $"detected down {detection.TotalMilliseconds:0} ms after kill; restart took {restartTook.TotalMilliseconds:0} ms; " +
            $"served again {recovery.TotalMilliseconds:0} ms after restart; retries off B: {retries}");

        Assert.True(result.Failed == 0, string.Join("; ", result.Failures.Take(5)));
        Assert.True(result.Succeeded > 500, $"only {result.Succeeded} requests succeeded");

        var change = lb.App.Services.GetRequiredService<IDestinationHealthHistory>().LastChange("backends", "B");
        Assert.NotNull(change);
        Assert.Equal("Up", change.To);
        Assert.Equal("Down", change.From);
        // Restarted before any probe failed: the passive failure (refused) ended with the first good probe.
        Assert.Equal("active health probe succeeded after the connection failure", change.Reason);
        Assert.True(await MetricAsync(lb, "balancer_destination_health_transitions_total{cluster=\"backends\",destination=\"B\",to=\"down\"}") >= 1);
        Assert.True(await MetricAsync(lb, "balancer_destination_health_transitions_total{cluster=\"backends\",destination=\"B\",to=\"up\"}") >= 1);
    }

    [Fact]
    public async Task HealthEndpoint503_LeavesRotation_HealthyAgain_Returns()
    {
        await using var lb = await BalancerFixture.StartAsync(edit: ActiveAndPassive());
        await WaitAllUpAsync(lb);
        var b = lb.Backend("B");

        var clock = Stopwatch.StartNew();
        b.State.Healthy = false;
        await WaitForHealthAsync(lb, "B", "Down", DetectionLimit);
        var leftAfter = clock.Elapsed;
        var without = await CountsAsync(lb, 40);
        Assert.False(without.ContainsKey("B"), $"B got {without.GetValueOrDefault("B")} requests while unhealthy");
        Assert.Equal(40, without["A"] + without["C"]);
        var down = lb.App.Services.GetRequiredService<IDestinationHealthHistory>().LastChange("backends", "B");
        Assert.Equal(("Up", "Down", "active health probe failed"), (down!.From, down.To, down.Reason));

        clock.Restart();
        b.State.Healthy = true;
        await WaitForHealthAsync(lb, "B", "Up", DetectionLimit);
        output.WriteLine($"probe-only: Down {leftAfter.TotalMilliseconds:0} ms after /health turned 503, Up {clock.Elapsed.TotalMilliseconds:0} ms after it turned 200");
        Assert.Equal(new Dictionary<string, int> { ["A"] = 20, ["B"] = 20, ["C"] = 20 }, await CountsAsync(lb, 60));
    }

    [Fact]
    public async Task AllBackendsDown_Answers503WithRetryAfter_InUnderOneSecond()
    {
        await using var lb = await BalancerFixture.StartAsync(edit: ActiveAndPassive());
        await WaitAllUpAsync(lb);
        // One request first, so that the timing below measures the answer, not the first request's start-up.
        Assert.NotEmpty(await lb.GetBackendAsync());
        foreach (var backend in lb.Backends)
        {
            await backend.KillAsync();
        }

        // At once, before any probe noticed: failover finds every destination refusing.
        await AssertNoBackendAnswerAsync(lb);

        // And once health checks know: no connection is even tried.
        foreach (var backend in lb.Backends)
        {
            await WaitForHealthAsync(lb, backend.Name, "Down", DetectionLimit);
        }

        await AssertNoBackendAnswerAsync(lb);
    }

    [Fact]
    public async Task Post_ToBackendRefusingConnections_IsRetriedOnAnother()
    {
        // No active probes: only the failing request itself can reveal that B is gone.
        await using var lb = await BalancerFixture.StartAsync();
        await lb.Backend("B").KillAsync();

        var uploads = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            using var response = await lb.Client.PostAsync("/api/upload", Upload(4096));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var files = JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsArray();
            Assert.Equal(4096, (long)files.Single()!["size"]!);
            uploads.Add(response.Headers.GetValues("X-Backend").Single());
        }

        Assert.DoesNotContain("B", uploads);
        Assert.Equal(1, await MetricAsync(lb, "balancer_retries_total{cluster=\"backends\",destination=\"B\",reason=\"refused\"}"));
        Assert.Equal("Down", await HealthAsync(lb, "B"));
    }

    [Fact]
    public async Task Post_WhoseBackendDiesMidRequest_IsNotReplayed()
    {
        await using var lb = await BalancerFixture.StartAsync();
        var b = lb.Backend("B");
        b.State.DelayMs = 30_000;

        var onB = await PostUntilOneHangsOnBAsync(lb, new Stopwatch());
        var servedElsewhere = lb.Backend("A").State.Served + lb.Backend("C").State.Served;
        await b.KillAsync();
        using var failed = await onB;

        Assert.Equal(HttpStatusCode.BadGateway, failed.StatusCode);
        Assert.Equal(servedElsewhere, lb.Backend("A").State.Served + lb.Backend("C").State.Served);
        Assert.Equal(0, await SumAsync(lb, "balancer_retries_total{"));
    }

    [Fact]
    public async Task Put_WhoseBackendDiesMidRequest_IsReplayedOnAnother_WithTheSameBody()
    {
        await using var lb = await BalancerFixture.StartAsync();
        var b = lb.Backend("B");
        b.State.DelayMs = 30_000;
        var body = new byte[20_000];
        new Random(7).NextBytes(body);

        // The whole body went to B (which holds the request), so the replay must come from the buffer.
        var onB = await SendUntilOneHangsOnBAsync(lb, new Stopwatch(), () => new HttpRequestMessage(HttpMethod.Put, "/api/upload") { Content = Upload(body) });
        await b.KillAsync();
        using var response = await onB;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.NotEqual("B", response.Headers.GetValues("X-Backend").Single());
        var file = JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsArray().Single()!;
        Assert.Equal(body.Length, (long)file["size"]!);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(body)), (string)file["sha256"]!);
        Assert.Equal(1, await MetricAsync(lb, "balancer_retries_total{cluster=\"backends\",destination=\"B\",reason=\"reset\"}"));
    }

    [Fact]
    public async Task HangingBackend_ClientGets504AtActivityTimeout_OthersKeepServing()
    {
        await using var lb = await StartWithHangingBAsync();

        // A POST is not retried after a timeout (the backend may be acting on it).
        var clock = Stopwatch.StartNew();
        var onB = await PostUntilOneHangsOnBAsync(lb, clock);
        var servedMeanwhile = new HashSet<string>();
        var getsMeanwhile = 0;
        using var gets = new HttpClient { BaseAddress = lb.ProxyAddress };
        while (!onB.IsCompleted)
        {
            // Others keep serving while the POST waits on B (a GET landing on B is retried elsewhere).
            using var get = await gets.GetAsync("/");
            Assert.Equal(HttpStatusCode.OK, get.StatusCode);
            servedMeanwhile.Add(get.Headers.GetValues("X-Backend").Single());
            getsMeanwhile++;
        }

        using var response = await onB;
        var elapsed = clock.Elapsed;
        output.WriteLine($"504 after {elapsed.TotalMilliseconds:0} ms; meanwhile {getsMeanwhile} GETs served by {string.Join(",", servedMeanwhile.Order())}");
        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.InRange(elapsed, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(3));
        Assert.DoesNotContain("B", servedMeanwhile);
        Assert.Equal(["A", "C"], servedMeanwhile.Order());

        // The timed-out destination is out of rotation at once (passive), though its /health still answers.
        Assert.Equal("Down", await HealthAsync(lb, "B"));
    }

    [Fact]
    public async Task HangingBackend_AttemptTimeoutOfTheResilienceHandler_Also504()
    {
        // No ActivityTimeout (YARP's 100 s): the breaker pipeline's own attempt timeout must give the same 504.
        await using var lb = await BalancerFixture.StartAsync(edit: config =>
        {
            ActiveAndPassive()(config);
            config["Balancer"]!["CircuitBreaker"] = new JsonObject { ["AttemptTimeout"] = "00:00:01" };
        });
        await WaitAllUpAsync(lb);
        lb.Backend("B").State.DelayMs = 60_000;

        var clock = new Stopwatch();
        using var response = await await PostUntilOneHangsOnBAsync(lb, clock);
        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(3));
        Assert.Equal("Down", await HealthAsync(lb, "B"));
    }

    [Fact]
    public async Task HangingBackend_Get_IsRetriedOnAnotherAfterTheTimeout()
    {
        await using var lb = await StartWithHangingBAsync();

        // Round robin sends one of the first three GETs to B; each still gets its answer from A or C.
        var slowest = TimeSpan.Zero;
        for (var i = 0; i < 3; i++)
        {
            var clock = Stopwatch.StartNew();
            Assert.NotEqual("B", await lb.GetBackendAsync());
            slowest = clock.Elapsed > slowest ? clock.Elapsed : slowest;
        }

        output.WriteLine($"slowest GET {slowest.TotalMilliseconds:0} ms");
        Assert.InRange(slowest, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(3));
        Assert.Equal(1, await MetricAsync(lb, "balancer_retries_total{cluster=\"backends\",destination=\"B\",reason=\"timeout\"}"));
    }

    [Fact]
    public async Task BackendAnswering503ToTraffic_OpensItsCircuit_LeavesRotationThoughProbesPass()
    {
        await using var lb = await BalancerFixture.StartAsync(edit: config =>
        {
            ActiveAndPassive()(config);
            config["Balancer"]!["CircuitBreaker"] = new JsonObject
            {
                ["MinimumThroughput"] = "4",
                ["FailureRatio"] = "0.5",
                ["BreakDuration"] = "00:00:30",
            };
        });
        await WaitAllUpAsync(lb);
        lb.Backend("B").State.FailStatus = 503;

        // Round robin: every third request meets B's 503 (an answer, so not retried) until its circuit opens.
        var failures = 0;
        await Poll.UntilAsync(async () =>
        {
            using var response = await lb.Client.GetAsync("/");
            failures += response.StatusCode == HttpStatusCode.ServiceUnavailable ? 1 : 0;
            return await HealthAsync(lb, "B") == "Down";
        }, TimeSpan.FromSeconds(10), "B's circuit to open");

        Assert.Equal(4, failures);
        var change = lb.App.Services.GetRequiredService<IDestinationHealthHistory>().LastChange("backends", "B");
        Assert.StartsWith("circuit breaker opened", change!.Reason, StringComparison.Ordinal);
        var counts = await CountsAsync(lb, 30);
        Assert.False(counts.ContainsKey("B"), $"B got {counts.GetValueOrDefault("B")} requests with its circuit open");
        // Its probes still pass, yet it stays out: probes prove nothing about the traffic it fails.
        Assert.Equal("Down", await HealthAsync(lb, "B"));
    }

    /// <summary>
    /// Sends uploads one at a time until one stays in flight on B (round robin puts one of the first three
    /// there); <paramref name="clock"/> is restarted as each is sent.
    /// </summary>
    private static Task<Task<HttpResponseMessage>> PostUntilOneHangsOnBAsync(BalancerFixture lb, Stopwatch clock) =>
        SendUntilOneHangsOnBAsync(lb, clock, () => new HttpRequestMessage(HttpMethod.Post, "/api/upload") { Content = Upload(new byte[1024]) });

    private static async Task<Task<HttpResponseMessage>> SendUntilOneHangsOnBAsync(BalancerFixture lb, Stopwatch clock, Func<HttpRequestMessage> request)
    {
        for (var i = 0; i < 3; i++)
        {
            // Counted by B itself: the balancer counts a request in flight from its pick, before the connection is
            // made, and a kill before B reads the request is a refusal, which is retried even for a POST.
            var received = lb.Backend("B").State.Received;
            clock.Restart();
            var send = lb.Client.SendAsync(request());
            await Poll.UntilAsync(() => send.IsCompleted || lb.Backend("B").State.Received > received, TimeSpan.FromSeconds(5), "the upload to finish or hang on B");
            if (!send.IsCompleted)
            {
                return send;
            }

            using var done = await send;
            Assert.Equal(HttpStatusCode.OK, done.StatusCode);
        }

        throw new InvalidOperationException("none of three uploads went to B");
    }

    /// <summary>Probes every second, a 1 s ActivityTimeout, and B hanging on every workload request (not on /health).</summary>
    private static async Task<BalancerFixture> StartWithHangingBAsync()
    {
        var lb = await BalancerFixture.StartAsync(edit: ActiveAndPassive(cluster: c =>
            c["HttpRequest"] = new JsonObject { ["ActivityTimeout"] = "00:00:01" }));
        await WaitAllUpAsync(lb);
        lb.Backend("B").State.DelayMs = 60_000;
        return lb;
    }

    private async Task AssertNoBackendAnswerAsync(BalancerFixture lb)
    {
        var clock = Stopwatch.StartNew();
        using var response = await lb.Client.GetAsync("/");
        var elapsed = clock.Elapsed;
        output.WriteLine($"all down: {(int)response.StatusCode} in {elapsed.TotalMilliseconds:0} ms");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("1", response.Headers.GetValues("Retry-After").Single());
        Assert.Contains("no healthy backend", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.True(elapsed < TimeSpan.FromSeconds(1), $"took {elapsed.TotalMilliseconds:0} ms");
    }

    private static MultipartFormDataContent Upload(int size) => Upload(new byte[size]);

    private static MultipartFormDataContent Upload(byte[] data) => new()
    {
        { new ByteArrayContent(data), "file", "data.bin" },
    };

    private static async Task<Dictionary<string, int>> CountsAsync(BalancerFixture lb, int requests)
    {
        var counts = new Dictionary<string, int>();
        for (var i = 0; i < requests; i++)
        {
            var name = await lb.GetBackendAsync();
            counts[name] = counts.GetValueOrDefault(name) + 1;
        }

        return counts;
    }
}
