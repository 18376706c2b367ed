using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;

namespace Balancer.Tests.Hosting;

/// <summary>
/// What the proxy listener does with requests it must not forward: each gets its 4xx from the balancer
/// itself, no backend sees anything of it, and the balancer keeps serving.
/// </summary>
[Collection(IntegrationCollection.Name)]
public sealed class RequestLimitsTests
{
    [Theory]
    [InlineData("GARBAGE\r\n\r\n", "400 Bad Request")]
    [InlineData("GET /\r\n\r\n", "400 Bad Request")]
    [InlineData("GET / HTTP/1.1\r\n\r\n", "400 Bad Request")]
    [InlineData("GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n", "400 Bad Request")]
    [InlineData("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello", "400 Bad Request")]
    [InlineData("GET / HTTP/7.0\r\nHost: x\r\n\r\n", "505 HTTP Version Not Supported")]
    public async Task MalformedRequest_GetsItsError_NothingReachesABackend(string request, string status)
    {
        await using var lb = await BalancerFixture.StartAsync();

        var answer = await RawHttp.ExchangeAsync(lb.ProxyAddress, request);

        Assert.StartsWith($"HTTP/1.1 {status}\r\n", answer, StringComparison.Ordinal);
        await AssertNothingReachedABackendAndStillServesAsync(lb);
    }

    [Fact]
    public async Task Header70kB_Gets431_NothingReachesABackend()
    {
        await using var lb = await BalancerFixture.StartAsync();

        var answer = await RawHttp.ExchangeAsync(lb.ProxyAddress, $"GET / HTTP/1.1\r\nHost: x\r\nX-Big: {new string('a', 70_000)}\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 431 Request Header Fields Too Large\r\n", answer, StringComparison.Ordinal);
        await AssertNothingReachedABackendAndStillServesAsync(lb);
    }

    [Fact]
    public async Task Headers31KiB_AreForwarded_JustUnderTheDefault32KiB()
    {
        await using var lb = await BalancerFixture.StartAsync();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/");
        for (var i = 0; i < 31; i++)
        {
            request.Headers.Add($"X-Cookie-{i}", new string('c', 1000));
        }

        using var response = await lb.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task TooManyHeaders_Get431()
    {
        await using var lb = await BalancerFixture.StartAsync();
        var headers = string.Concat(Enumerable.Range(0, 101).Select(i => $"X-H{i}: v\r\n"));

        var answer = await RawHttp.ExchangeAsync(lb.ProxyAddress, $"GET / HTTP/1.1\r\nHost: x\r\n{headers}\r\n");

        Assert.StartsWith("HTTP/1.1 431 ", answer, StringComparison.Ordinal);
        await AssertNothingReachedABackendAndStillServesAsync(lb);
    }

    [Fact]
    public async Task RequestLineOver8KiB_Gets414_NothingReachesABackend()
    {
        await using var lb = await BalancerFixture.StartAsync();

        var answer = await RawHttp.ExchangeAsync(lb.ProxyAddress, $"GET /{new string('a', 9000)} HTTP/1.1\r\nHost: x\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 414 URI Too Long\r\n", answer, StringComparison.Ordinal);
        await AssertNothingReachedABackendAndStillServesAsync(lb);
    }

    [Fact]
    public async Task BodyOverTheLimit_ByContentLength_Gets413AtOnce_NothingReachesABackend()
    {
        await using var lb = await BalancerFixture.StartAsync(edit: Limits(new JsonObject { ["MaxRequestBodySize"] = 65536 }));

        // Headers only: the answer comes before the client has sent a byte of the body.
        var answer = await RawHttp.ExchangeAsync(lb.ProxyAddress, "POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 65537\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 413 Payload Too Large\r\n", answer, StringComparison.Ordinal);
        Assert.Contains("Connection: close\r\n", answer, StringComparison.Ordinal);
        Assert.EndsWith("413 Content Too Large: the request body may be at most 65536 bytes.\n", answer, StringComparison.Ordinal);

        // An ordinary client sending the whole body reads the same answer.
        using var response = await lb.Client.PostAsync("/api/upload", Upload(100_000));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        await AssertNothingReachedABackendAndStillServesAsync(lb);
    }

    [Fact]
    public async Task BodyAtTheLimit_IsForwarded()
    {
        await using var lb = await BalancerFixture.StartAsync(edit: Limits(new JsonObject { ["MaxRequestBodySize"] = 65536 }));
        var content = new ByteArrayContent(new byte[65536]);

        using var response = await lb.Client.PutAsync("/api/upload", content);

        // Not multipart, so the backend refuses it: but it is the backend that answers.
        Assert.True(response.Headers.Contains("X-Backend"), $"{(int)response.StatusCode} without X-Backend");
    }

    [Fact]
    public async Task ChunkedBodyOverTheLimit_IsCut_With413()
    {
        await using var lb = await BalancerFixture.StartAsync(edit: Limits(new JsonObject { ["MaxRequestBodySize"] = 65536 }));
        var chunk = new string('x', 40_000);
        var request = "POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n" +
                      $"{chunk.Length:x}\r\n{chunk}\r\n{chunk.Length:x}\r\n{chunk}\r\n0\r\n\r\n";

        var answer = await RawHttp.ExchangeAsync(lb.ProxyAddress, request);

        // A chunked body has no length to check up front: it streams to a backend, which may see a request
        // cut short, until it passes the limit; the client is told why.
        Assert.StartsWith("HTTP/1.1 413 Payload Too Large\r\n", answer, StringComparison.Ordinal);
        using var next = await lb.Client.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
    }

    [Fact]
    public async Task HeadersSentSlowly_Get408_AtTheHeaderTimeout()
    {
        await using var lb = await BalancerFixture.StartAsync(edit: Limits(new JsonObject { ["RequestHeadersTimeout"] = "00:00:02" }));
        using var raw = await RawHttp.ConnectAsync(lb.ProxyAddress);
        var watch = Stopwatch.StartNew();

        await raw.SendAsync("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: a");
        var answer = await raw.ReadToCloseAsync(TimeSpan.FromSeconds(15));

        Assert.StartsWith("HTTP/1.1 408 Request Timeout\r\n", answer, StringComparison.Ordinal);
        // Kestrel checks on a one-second heartbeat.
        Assert.InRange(watch.Elapsed, TimeSpan.FromSeconds(1.9), TimeSpan.FromSeconds(6));
        await AssertNothingReachedABackendAndStillServesAsync(lb);
    }

    [Fact]
    public async Task BodySentSlowly_IsCut_AtTheMinimumDataRate_BalancerKeepsServing()
    {
        await using var lb = await BalancerFixture.StartAsync(edit: Limits(new JsonObject { ["MinRequestBodyDataRate"] = 240, ["MinRequestBodyDataRateGracePeriod"] = "00:00:02" }));
        using var raw = await RawHttp.ConnectAsync(lb.ProxyAddress);
        var watch = Stopwatch.StartNew();
        await raw.SendAsync("PUT /api/upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n");

        // A few bytes a second, far below 240 B/s, until the balancer gives up on the connection.
        var closed = raw.ReadToCloseAsync(TimeSpan.FromSeconds(20));
        while (!closed.IsCompleted && watch.Elapsed < TimeSpan.FromSeconds(20))
        {
            try
            {
                await raw.SendAsync("x");
            }
            catch (IOException)
            {
                break;
            }

            await Task.WhenAny(closed, Task.Delay(250));
        }

        var answer = await closed;
        Assert.StartsWith("HTTP/1.1 408 Request Timeout\r\n", answer, StringComparison.Ordinal);
        Assert.InRange(watch.Elapsed, TimeSpan.FromSeconds(1.9), TimeSpan.FromSeconds(8));
        using var next = await lb.Client.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
    }

    [Fact]
    public async Task ConnectionThatSendsNothing_IsClosed_AtTheHeaderTimeout_NotTheKeepAliveTimeout()
    {
        await using var lb = await BalancerFixture.StartAsync(edit: Limits(new JsonObject { ["RequestHeadersTimeout"] = "00:00:02" }));
        using var raw = await RawHttp.ConnectAsync(lb.ProxyAddress);
        var watch = Stopwatch.StartNew();

        var answer = await raw.ReadToCloseAsync(TimeSpan.FromSeconds(15));

        Assert.Equal(string.Empty, answer);
        Assert.InRange(watch.Elapsed, TimeSpan.FromSeconds(1.9), TimeSpan.FromSeconds(6));
        Assert.Equal(0, lb.App.Services.GetRequiredService<Balancer.Hosting.ProxyConnections>().Open);
    }

    [Fact]
    public async Task ConnectionsOverTheLimit_Get503_ManagementStillAnswers_SlotFreedAfterClose()
    {
        await using var lb = await BalancerFixture.StartAsync(edit: Limits(new JsonObject { ["MaxConcurrentConnections"] = 2, ["RequestHeadersTimeout"] = "00:01:00" }));
        var connections = lb.App.Services.GetRequiredService<Balancer.Hosting.ProxyConnections>();
        using var first = await RawHttp.ConnectAsync(lb.ProxyAddress);
        using var second = await RawHttp.ConnectAsync(lb.ProxyAddress);
        await Poll.UntilAsync(() => connections.Open == 2, TimeSpan.FromSeconds(5), "two open connections");

        var answer = await RawHttp.ExchangeAsync(lb.ProxyAddress, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        using var client = new HttpClient { BaseAddress = lb.ProxyAddress };
        using var refused = await client.GetAsync("/");

        Assert.StartsWith("HTTP/1.1 503 Service Unavailable\r\n", answer, StringComparison.Ordinal);
        Assert.EndsWith("503 Service Unavailable: too many connections are open.\n", answer, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.Equal("1", refused.Headers.GetValues("Retry-After").Single());
        Assert.False(refused.Headers.Contains("X-Backend"));
        Assert.Equal(HttpStatusCode.OK, (await lb.Management.GetAsync("/status")).StatusCode);
        var metrics = await lb.MetricsAsync();
        Assert.Equal(2, metrics.Value("balancer_proxy_connections_rejected_total"));
        Assert.Equal(2, metrics.Value("balancer_proxy_connections"));

        first.Dispose();
        await Poll.UntilAsync(() => connections.Open == 1, TimeSpan.FromSeconds(5), "the closed connection's slot to be freed");
        using var served = await client.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        Assert.Equal(1, lb.Backends.Sum(b => b.State.Received));
    }

    private static Action<JsonObject> Limits(JsonObject limits) => config => config["Balancer"]!["Limits"] = limits;

    private static MultipartFormDataContent Upload(int bytes) =>
        new() { { new ByteArrayContent(new byte[bytes]), "file", "big.bin" } };

    private static async Task AssertNothingReachedABackendAndStillServesAsync(BalancerFixture lb)
    {
        Assert.Equal(0, lb.Backends.Sum(b => b.State.Received));
        using var response = await lb.Client.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, lb.Backends.Sum(b => b.State.Received));
    }
}
