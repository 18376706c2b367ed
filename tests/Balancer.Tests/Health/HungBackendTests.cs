using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Balancer.Health;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;
using Xunit.Abstractions;
using static Balancer.Tests.Health.HealthTestConfig;

namespace Balancer.Tests.Health;

/// <summary>
/// A backend that accepts connections and never answers joins a cluster of two real sample backends.
/// Requests safe to send again leave it the moment the active probe marks it Down; others wait for the
/// activity timeout.
/// </summary>
[Collection(IntegrationCollection.Name)]
public sealed class HungBackendTests(ITestOutputHelper output)
{
    private const int Threshold = 2;
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(1);

    /// <summary>
    /// YARP starts a probe round an interval after the previous one ended, and a round lasts as long as its
    /// slowest probe, the silent backend's (the probe timeout): <see cref="Threshold"/> failed rounds take this long.
    /// </summary>
    private static readonly TimeSpan Detection = Threshold * (Interval + ProbeTimeout);

    private static readonly TimeSpan Margin = TimeSpan.FromSeconds(1.5);

    [Fact]
    public async Task SilentBackend_MarkedDownByProbe_WaitingGetsAnsweredByOthersAtOnce_SlowHealthyResponseCompletes()
    {
        await using var silent = SilentBackend.Start();
        await using var lb = await BalancerFixture.StartAsync(edit: Cluster(silent: null));
        await WaitUpAsync(lb, "A", "B");

        // A response slower than the probe interval, on a healthy backend, in flight while the silent one falls.
        var slowClock = Stopwatch.StartNew();
        var slow = TimedGetAsync(lb.Client, "/delay/6000", slowClock);
        await Poll.UntilAsync(() => lb.Backend("A").State.Received + lb.Backend("B").State.Received == 1, TimeSpan.FromSeconds(5), "the slow request to reach A or B");

        var joined = await JoinAsync(lb, silent);
        var gets = await Task.WhenAll(Enumerable.Range(0, 9).Select(_ => TimedGetAsync(lb.Client, "/", joined.Clock)))
            .WaitAsync(Detection + TimeSpan.FromSeconds(20));
        var slowResult = await slow.WaitAsync(TimeSpan.FromSeconds(20));
        var slowEnded = DateTimeOffset.UtcNow;

        var down = lb.App.Services.GetRequiredService<IDestinationHealthHistory>().LastChange("backends", "H");
        Assert.NotNull(down);
        var downAfter = down.Time - joined.At;
        var last = gets.Max(g => g.Answered);
        output.WriteLine($"H marked Down {downAfter.TotalMilliseconds:0} ms after it joined; 9 GETs answered by " +
            $"{string.Join(",", gets.Select(g => g.Backend).Order())}, the last {last.TotalMilliseconds:0} ms after the join; " +
            $"slow GET {slowResult.Answered.TotalMilliseconds:0} ms on {slowResult.Backend}");

        Assert.All(gets, g => Assert.Equal(HttpStatusCode.OK, g.Status));
        Assert.Equal(9, gets.Count(g => g.Backend is "A" or "B"));
        // Round robin over three destinations: three of the nine landed on the silent one, every one redispatched.
        Assert.Equal(3, silent.Requests);
        Assert.Equal(3, await MetricAsync(lb, "balancer_retries_total{cluster=\"backends\",destination=\"H\",reason=\"marked_down\"}"));
        Assert.Equal(3, await SumAsync(lb, "balancer_retries_total{"));
        Assert.Equal(("Down", "active health probe failed"), (down.To, down.Reason));
        Assert.InRange(last, TimeSpan.Zero, Detection + Margin);
        // Redispatched as the probe marked it Down, not at some later timeout.
        Assert.InRange(last, downAfter - TimeSpan.FromSeconds(0.5), downAfter + TimeSpan.FromSeconds(1));

        Assert.Equal(HttpStatusCode.OK, slowResult.Status);
        Assert.Contains(slowResult.Backend, new[] { "A", "B" });
        // The backend's delay runs on the runtime's millisecond timer, which can end up to a tick before the
        // client's Stopwatch has seen 6 s; a response cut short by the balancer would be seconds early, not a tick.
        Assert.True(slowResult.Answered >= TimeSpan.FromSeconds(6) - TimeSpan.FromMilliseconds(20), $"slow GET answered after {slowResult.Answered}");
        Assert.True(slowEnded > down.Time, "the slow response ended before H was marked Down, so the test proved nothing");
    }

    [Fact]
    public async Task SilentBackend_MarkedDown_ReplayablePutRedispatched_UnreplayablePostWaitsForActivityTimeout()
    {
        var activityTimeout = TimeSpan.FromSeconds(8);
        await using var silent = SilentBackend.Start();
        await using var lb = await BalancerFixture.StartAsync(edit: Cluster(silent: null, activityTimeout));
        await WaitUpAsync(lb, "A", "B");
        var joined = await JoinAsync(lb, silent, activityTimeout);

        // A body of unknown length (chunked) cannot be replayed; a PUT with a small Content-Length can.
        var post = await SendUntilOneLandsOnAsync(lb, silent, () =>
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "/api/upload") { Content = Upload() };
            request.Headers.TransferEncodingChunked = true;
            return request;
        });
        var put = await SendUntilOneLandsOnAsync(lb, silent, () => new HttpRequestMessage(HttpMethod.Put, "/api/upload") { Content = Upload() });

        await WaitForHealthAsync(lb, "H", "Down", Detection + Margin);
        var downAt = Stopwatch.StartNew();
        using var putResponse = await put.Response.WaitAsync(TimeSpan.FromSeconds(5));
        var putAnswered = downAt.Elapsed;
        Assert.InRange(putAnswered, TimeSpan.Zero, TimeSpan.FromSeconds(1));
        Assert.False(post.Response.IsCompleted, "the POST was answered when H went Down");

        using var postResponse = await post.Response.WaitAsync(activityTimeout + TimeSpan.FromSeconds(10));
        var postAnswered = post.Clock.Elapsed;
        output.WriteLine($"H Down {joined.Clock.ElapsedMilliseconds - downAt.ElapsedMilliseconds} ms after the join; PUT answered {putAnswered.TotalMilliseconds:0} ms after Down " +
            $"by {putResponse.Headers.GetValues("X-Backend").Single()}; POST answered {(int)postResponse.StatusCode} {postAnswered.TotalMilliseconds:0} ms after it was sent");

        Assert.Equal(HttpStatusCode.OK, putResponse.StatusCode);
        Assert.Contains(putResponse.Headers.GetValues("X-Backend").Single(), new[] { "A", "B" });
        Assert.Equal(HttpStatusCode.GatewayTimeout, postResponse.StatusCode);
        Assert.InRange(postAnswered, activityTimeout - TimeSpan.FromSeconds(0.1), activityTimeout + TimeSpan.FromSeconds(3));
        Assert.Equal(2, silent.Requests);
        Assert.Equal(1, await MetricAsync(lb, "balancer_retries_total{cluster=\"backends\",destination=\"H\",reason=\"marked_down\"}"));
        Assert.Equal(1, await SumAsync(lb, "balancer_retries_total{"));
    }

    [Fact]
    public async Task SilentBackend_MarkedDownByAnotherRequestsTimeout_WaitingGetWithdrawnThen()
    {
        // Passive checks only: the silent backend goes Down when the first request to it times out.
        var activityTimeout = TimeSpan.FromSeconds(4);
        await using var silent = SilentBackend.Start();
        await using var lb = await BalancerFixture.StartAsync(edit: Cluster(silent: null, activityTimeout, probes: false));
        await JoinAsync(lb, silent, activityTimeout, probes: false);

        var first = await SendUntilOneLandsOnAsync(lb, silent, () => new HttpRequestMessage(HttpMethod.Get, "/"));
        // Half its timeout later, a second GET waits on it too.
        await Poll.UntilAsync(() => first.Clock.Elapsed >= activityTimeout / 2, activityTimeout, "half the activity timeout");
        var second = await SendUntilOneLandsOnAsync(lb, silent, () => new HttpRequestMessage(HttpMethod.Get, "/"));
        var sentApart = first.Clock.Elapsed - second.Clock.Elapsed;

        using var firstResponse = await first.Response.WaitAsync(activityTimeout + TimeSpan.FromSeconds(10));
        var firstAnswered = first.Clock.Elapsed;
        using var secondResponse = await second.Response.WaitAsync(activityTimeout + TimeSpan.FromSeconds(10));
        var secondAnswered = second.Clock.Elapsed;
        output.WriteLine($"first GET answered {firstAnswered.TotalMilliseconds:0} ms after it was sent (its timeout, then a retry); the second, " +
            $"sent {sentApart.TotalMilliseconds:0} ms later, {secondAnswered.TotalMilliseconds:0} ms after it was sent");

        Assert.Equal(HttpStatusCode.OK, firstResponse.StatusCode);
        Assert.Equal(HttpStatusCode.OK, secondResponse.StatusCode);
        Assert.Contains(secondResponse.Headers.GetValues("X-Backend").Single(), new[] { "A", "B" });
        Assert.InRange(firstAnswered, activityTimeout - TimeSpan.FromSeconds(0.1), activityTimeout + TimeSpan.FromSeconds(1.5));
        // Withdrawn when the first one's timeout marked H Down, well before its own timeout.
        Assert.InRange(sentApart + secondAnswered, firstAnswered - TimeSpan.FromSeconds(0.5), firstAnswered + TimeSpan.FromSeconds(0.5));
        Assert.InRange(secondAnswered, TimeSpan.Zero, activityTimeout - TimeSpan.FromSeconds(1));
        Assert.Equal(2, silent.Requests);
        Assert.Equal(1, await MetricAsync(lb, "balancer_retries_total{cluster=\"backends\",destination=\"H\",reason=\"timeout\"}"));
        Assert.Equal(1, await MetricAsync(lb, "balancer_retries_total{cluster=\"backends\",destination=\"H\",reason=\"marked_down\"}"));
        var down = lb.App.Services.GetRequiredService<IDestinationHealthHistory>().LastChange("backends", "H");
        Assert.Equal(("Down", "request failed: timeout"), (down!.To, down.Reason));
    }

    /// <summary>
    /// Destinations A and B only (or with the silent one as H); probes every second, two failures mark Down
    /// (or no probes at all).
    /// </summary>
    private static Action<JsonObject> Cluster(SilentBackend? silent, TimeSpan? activityTimeout = null, bool probes = true) => config =>
    {
        ActiveAndPassive()(config);
        var cluster = HealthTestConfig.Cluster(config);
        cluster["HealthCheck"]!["Active"]!["Enabled"] = probes;
        cluster["HealthCheck"]!["Active"]!["Interval"] = Interval.ToString();
        cluster["HealthCheck"]!["Active"]!["Timeout"] = ProbeTimeout.ToString();
        cluster["Metadata"]!["ConsecutiveFailuresHealthPolicy.Threshold"] = Threshold.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var destinations = cluster["Destinations"]!.AsObject();
        destinations.Remove("C");
        if (silent is not null)
        {
            destinations["H"] = new JsonObject { ["Address"] = silent.Address.ToString() };
        }

        if (activityTimeout is { } timeout)
        {
            cluster["HttpRequest"] = new JsonObject { ["ActivityTimeout"] = timeout.ToString() };
        }
    };

    /// <summary>Rewrites the config with the silent backend added and waits until the balancer has it.</summary>
    private static async Task<(DateTimeOffset At, Stopwatch Clock)> JoinAsync(BalancerFixture lb, SilentBackend silent, TimeSpan? activityTimeout = null, bool probes = true)
    {
        lb.WriteConfig("RoundRobin", Cluster(silent, activityTimeout, probes));
        await Poll.UntilAsync(async () => (await lb.StatusAsync())["clusters"]![0]!["destinations"]!.AsArray().Any(d => (string)d!["id"]! == "H"),
            TimeSpan.FromSeconds(10), "H to join the cluster");
        return (DateTimeOffset.UtcNow, Stopwatch.StartNew());
    }

    private static async Task WaitUpAsync(BalancerFixture lb, params string[] destinations)
    {
        foreach (var destination in destinations)
        {
            await WaitForHealthAsync(lb, destination, "Up", TimeSpan.FromSeconds(10));
        }
    }

    private static async Task<(HttpStatusCode Status, string? Backend, TimeSpan Answered)> TimedGetAsync(HttpClient client, string path, Stopwatch clock)
    {
        using var response = await client.GetAsync(path);
        await response.Content.LoadIntoBufferAsync();
        return (response.StatusCode, response.Headers.TryGetValues("X-Backend", out var names) ? names.Single() : null, clock.Elapsed);
    }

    /// <summary>
    /// Sends requests one at a time until one stays on the silent backend (round robin puts one of three there);
    /// the others are answered by A or B.
    /// </summary>
    private static async Task<(Task<HttpResponseMessage> Response, Stopwatch Clock)> SendUntilOneLandsOnAsync(BalancerFixture lb, SilentBackend silent, Func<HttpRequestMessage> request)
    {
        for (var i = 0; i < 3; i++)
        {
            var before = silent.Requests;
            var clock = Stopwatch.StartNew();
            var send = lb.Client.SendAsync(request());
            await Poll.UntilAsync(() => send.IsCompleted || silent.Requests > before, TimeSpan.FromSeconds(5), "the request to be answered or reach the silent backend");
            if (!send.IsCompleted)
            {
                return (send, clock);
            }

            (await send).Dispose();
        }

        throw new InvalidOperationException("Three requests in a row missed the silent backend under round robin.");
    }

    private static MultipartFormDataContent Upload() => new() { { new ByteArrayContent(new byte[1024]), "file", "data.bin" } };
}
