using System.Net;
using System.Text.Json.Nodes;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;
using Microsoft.Extensions.Logging.Testing;

namespace Balancer.Tests.Headers;

/// <summary>
/// What the balancer forwards of a message's headers, seen from both ends: a raw client on one side and a
/// real backend that echoes what it received on the other.
/// </summary>
[Collection(FunctionalCollection.Name)]
public sealed class HeaderHygieneTests
{
    [Fact]
    public async Task FieldsNamedInConnection_AreDropped_InBothDirections()
    {
        await using var echo = await HeaderEchoServer.StartAsync();
        await using var lb = await BalancerFixture.StartAsync(edit: Only(echo));

        // Kestrel keeps a Connection header only while it holds no connection option (close, keep-alive,
        // upgrade); the second request closes the connection so the exchange ends.
        var answer = await RawHttp.ExchangeAsync(lb.ProxyAddress,
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: X-Secret\r\nX-Secret: s3\r\nX-Other: kept\r\n\r\n" +
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");

        var (status, headers, body) = Split(answer);
        Assert.Equal("HTTP/1.1 200 OK", status);
        var received = HeaderEchoServer.ParseEcho(body);
        Assert.False(received.ContainsKey("X-Secret"), body);
        Assert.Equal(["kept"], received["X-Other"]);
        // The backend named X-Hop-Response in its Connection header: the client never sees it.
        Assert.False(headers.ContainsKey("X-Hop-Response"), answer);
        Assert.Equal("for the client", headers["X-End-To-End"]);
    }

    [Fact]
    public async Task FramingFieldsNamedInConnection_StillFrameTheBody()
    {
        await using var echo = await HeaderEchoServer.StartAsync();
        await using var lb = await BalancerFixture.StartAsync(edit: Only(echo));

        var answer = await RawHttp.ExchangeAsync(lb.ProxyAddress,
            "POST / HTTP/1.1\r\nHost: x\r\nConnection: Content-Length, close\r\nContent-Length: 5\r\n\r\nhello");

        var (status, _, body) = Split(answer);
        Assert.Equal("HTTP/1.1 200 OK", status);
        Assert.Equal(["hello"], HeaderEchoServer.ParseEcho(body)["Body"]);
    }

    [Fact]
    public async Task Connect_Gets501_NoBackendSeesIt_NothingLoggedWithAStackTrace()
    {
        await using var lb = await BalancerFixture.StartAsync(configure: b => b.Logging.AddFakeLogging());

        var answer = await RawHttp.ExchangeAsync(lb.ProxyAddress, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 501 Not Implemented\r\n", answer, StringComparison.Ordinal);
        Assert.Contains("CONNECT is not supported", answer, StringComparison.Ordinal);
        Assert.All(lb.Backends, b => Assert.Equal(0, b.State.Received));
        Assert.DoesNotContain(lb.App.Services.GetFakeLogCollector().GetSnapshot(), r => r.Exception is not null || r.Level >= LogLevel.Warning);
        Assert.NotEmpty(await lb.GetBackendAsync());
    }

    [Fact]
    public async Task UntrustedPeer_ForwardingHeaders_AreReplacedByItsOwnAddress()
    {
        await using var echo = await HeaderEchoServer.StartAsync();
        await using var lb = await BalancerFixture.StartAsync(edit: OnlyTrusting(echo, "127.0.6.0/29"));
        using var client = new SourceAddressClient(IPAddress.Parse("127.0.5.1"));

        var received = await EchoAsync(client, lb, ("X-Forwarded-For", "203.0.113.9"), ("Forwarded", "for=203.0.113.9"));

        Assert.Equal(["127.0.5.1"], received["X-Forwarded-For"]);
        Assert.Equal([$"for=127.0.5.1;proto=http;host=\"{lb.ProxyAddress.Authority}\""], received["Forwarded"]);
    }

    [Fact]
    public async Task TrustedPeer_ForwardingHeaders_GetItsAddressAppended()
    {
        await using var echo = await HeaderEchoServer.StartAsync();
        await using var lb = await BalancerFixture.StartAsync(edit: OnlyTrusting(echo, "127.0.6.0/29"));
        using var proxy = new SourceAddressClient(IPAddress.Parse("127.0.6.1"));

        var chained = await EchoAsync(proxy, lb, ("X-Forwarded-For", "203.0.113.9, 198.51.100.7"), ("Forwarded", "for=203.0.113.9, for=\"[2001:db8::7]\""));
        var first = await EchoAsync(proxy, lb);

        Assert.Equal(["203.0.113.9, 198.51.100.7, 127.0.6.1"], chained["X-Forwarded-For"]);
        Assert.Equal([$"for=203.0.113.9, for=\"[2001:db8::7]\", for=127.0.6.1;proto=http;host=\"{lb.ProxyAddress.Authority}\""], chained["Forwarded"]);
        // Nothing to append to: the chain starts with the peer, as NGINX's $proxy_add_x_forwarded_for does.
        Assert.Equal(["127.0.6.1"], first["X-Forwarded-For"]);
    }

    [Fact]
    public async Task NoTrustedProxies_ForwardedForIsThePeer_AsBefore()
    {
        await using var echo = await HeaderEchoServer.StartAsync();
        await using var lb = await BalancerFixture.StartAsync(edit: Only(echo));
        using var client = new SourceAddressClient(IPAddress.Parse("127.0.6.1"));

        var received = await EchoAsync(client, lb, ("X-Forwarded-For", "203.0.113.9"));

        Assert.Equal(["127.0.6.1"], received["X-Forwarded-For"]);
        Assert.Equal(["http"], received["X-Forwarded-Proto"]);
        Assert.Equal([lb.ProxyAddress.Authority], received["X-Forwarded-Host"]);
    }

    [Fact]
    public async Task KeepAliveConnection_EachRequestsForwarded_NamesItsOwnHost()
    {
        await using var echo = await HeaderEchoServer.StartAsync();
        await using var lb = await BalancerFixture.StartAsync(edit: Only(echo));
        // One connection for all four, so the later requests meet what the first left on it.
        using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1 });
        string[] hosts = ["one.example", "one.example", "two.example", "one.example"];

        var received = new List<string>();
        foreach (var host in hosts)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, lb.ProxyAddress);
            request.Headers.Host = host;
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            received.Add(HeaderEchoServer.ParseEcho(await response.Content.ReadAsStringAsync())["Forwarded"].Single());
        }

        Assert.Equal(hosts.Select(h => $"for=127.0.0.1;proto=http;host={h}"), received);
    }

    /// <summary>Points the fixture's cluster at <paramref name="echo"/> alone.</summary>
    private static Action<JsonObject> Only(HeaderEchoServer echo) => config =>
        config["ReverseProxy"]!["Clusters"]!["backends"]!["Destinations"] = new JsonObject
        {
            ["echo"] = new JsonObject { ["Address"] = echo.Address.ToString() },
        };

    private static Action<JsonObject> OnlyTrusting(HeaderEchoServer echo, string trusted) => config =>
    {
        Only(echo)(config);
        config["Balancer"]!["TrustedProxies"] = new JsonArray(trusted);
    };

    private static async Task<Dictionary<string, List<string>>> EchoAsync(SourceAddressClient client, BalancerFixture lb, params (string Name, string Value)[] headers)
    {
        using var response = await client.GetAsync(lb.ProxyAddress, headers.Select(h => KeyValuePair.Create(h.Name, h.Value)));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return HeaderEchoServer.ParseEcho(await response.Content.ReadAsStringAsync());
    }

    /// <summary>The first answer of a raw HTTP/1.1 exchange: status line, headers by name, body (to its Content-Length).</summary>
    private static (string Status, Dictionary<string, string> Headers, string Body) Split(string answer)
    {
        var end = answer.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        Assert.True(end > 0, answer);
        var lines = answer[..end].Split("\r\n");
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in lines.Skip(1))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            headers[line[..colon]] = line[(colon + 1)..].Trim();
        }

        var body = answer[(end + 4)..];
        return (lines[0], headers, headers.TryGetValue("Content-Length", out var length) ? body[..int.Parse(length, System.Globalization.CultureInfo.InvariantCulture)] : body);
    }
}
