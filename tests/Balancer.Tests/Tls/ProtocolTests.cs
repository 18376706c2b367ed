using System.Net;
using System.Net.Security;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;

namespace Balancer.Tests.Tls;

/// <summary>HTTP/2 in cleartext, redirect to HTTPS, HSTS and WebSockets over TLS.</summary>
[Collection(FunctionalCollection.Name)]
public sealed class ProtocolTests : IDisposable
{
    private readonly TestCertificates _certificates = new();

    [Fact]
    public async Task H2cListener_PriorKnowledge_SpreadsRoundRobinExactly_HttpListenerStaysHttp11()
    {
        await using var lb = await BalancerFixture.StartAsync("RoundRobin", config =>
            config["Balancer"]!["Listen"] = new JsonArray("http://127.0.0.1:0", "h2c://127.0.0.1:0"));
        var url = new Uri(lb.ListenerOf("h2c"), "/").ToString();

        // HttpClient over one HTTP/2 connection for the spread (curl 7.88 cannot reuse a prior-knowledge connection).
        using var client = new HttpClient { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        var counts = new Dictionary<string, int>();
        for (var i = 0; i < 30; i++)
        {
            using var response = await client.GetAsync(url);
            Assert.Equal((HttpVersion.Version20, HttpStatusCode.OK), (response.Version, response.StatusCode));
            var backend = response.Headers.GetValues("X-Backend").Single();
            counts[backend] = counts.GetValueOrDefault(backend) + 1;
        }

        var curl = await Curl(["--http2-prior-knowledge", "-o", "/dev/null", url]);
        var plain = await Curl(["--http2", "-o", "/dev/null", new Uri(lb.ListenerOf("http"), "/").ToString()]);

        Assert.Equal(new Dictionary<string, int> { ["A"] = 10, ["B"] = 10, ["C"] = 10 }, counts);
        Assert.Matches(@"^2 200 [ABC]$", curl.Trim());
        // curl --http2 over cleartext asks for an upgrade, which Kestrel ignores: HTTP/1.1 it stays.
        Assert.StartsWith("1.1 200 ", plain, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RedirectHttp_Answers308_KeepingPathAndQuery_AndHstsOnlyOverHttps()
    {
        var certificate = _certificates.Issue("server");
        await using var lb = await BalancerFixture.StartAsync("RoundRobin", config =>
        {
            TlsConfig.Https(certificate)(config);
            TlsConfig.Tls(config)["RedirectHttp"] = true;
            TlsConfig.Tls(config)["Hsts"] = new JsonObject { ["Enabled"] = true, ["IncludeSubDomains"] = true };
        });
        var http = lb.ListenerOf("http");
        var https = lb.ListenerOf("https");

        var redirect = await Curl(["-X", "POST", "-o", "/dev/null", "-w", "%{redirect_url} %header{strict-transport-security}", new Uri(http, "/api/products?limit=2&x=%20y").AbsoluteUri], format: "%{http_code} ");
        var followed = await Curl(["-L", "-o", "/dev/null", new Uri(http, "/api/products?limit=2").ToString()]);
        var secure = await Curl(["-o", "/dev/null", "-w", "%header{strict-transport-security}", new Uri(https, "/").ToString()], format: "");

        Assert.Equal($"308 https://127.0.0.1:{https.Port}/api/products?limit=2&x=%20y ", redirect);
        Assert.Matches(@"^2 200 [ABC]$", followed.Trim());
        Assert.Equal("max-age=31536000; includeSubDomains", secure);
    }

    [Fact]
    public async Task RedirectAndHsts_AreOffByDefault()
    {
        var certificate = _certificates.Issue("server");
        await using var lb = await BalancerFixture.StartAsync("RoundRobin", TlsConfig.Https(certificate));

        var plain = await Curl(["-o", "/dev/null", new Uri(lb.ListenerOf("http"), "/").ToString()]);
        var secure = await Curl(["-o", "/dev/null", "-w", "[%header{strict-transport-security}]", new Uri(lb.ListenerOf("https"), "/").ToString()], format: "");

        Assert.Matches(@"^1\.1 200 [ABC]$", plain.Trim());
        Assert.Equal("[]", secure);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task WebSocket_OverWss_EchoesThroughTheBalancer(int httpVersion)
    {
        var certificate = _certificates.Issue("server");
        await using var lb = await BalancerFixture.StartAsync("RoundRobin", TlsConfig.Https(certificate));
        var https = lb.ListenerOf("https");
        using var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, chain, errors) =>
            global::Balancer.Tls.BackendTrust.IsTrusted([_certificates.Ca], cert, chain, errors);
        using var invoker = new HttpMessageInvoker(handler);
        using var socket = new ClientWebSocket();
        socket.Options.HttpVersion = httpVersion == 2 ? HttpVersion.Version20 : HttpVersion.Version11;
        socket.Options.HttpVersionPolicy = HttpVersionPolicy.RequestVersionExact;
        socket.Options.CollectHttpResponseDetails = true;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        await socket.ConnectAsync(new Uri($"wss://127.0.0.1:{https.Port}/ws/echo"), invoker, timeout.Token);
        var messages = new List<string>();
        var buffer = new byte[1024];
        foreach (var text in new[] { "hello", "over", "tls" })
        {
            await socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, timeout.Token);
            var received = await socket.ReceiveAsync(buffer, timeout.Token);
            messages.Add(Encoding.UTF8.GetString(buffer, 0, received.Count));
        }

        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", timeout.Token);

        Assert.Equal(["hello", "over", "tls"], messages);
        // RFC 8441 over HTTP/2 is an extended CONNECT answered 200; HTTP/1.1 upgrades with 101.
        Assert.Equal(httpVersion == 2 ? HttpStatusCode.OK : HttpStatusCode.SwitchingProtocols, socket.HttpStatusCode);
        Assert.Equal(WebSocketState.Closed, socket.State);
    }

    public void Dispose() => _certificates.Dispose();

    /// <summary>curl's output with <paramref name="format"/> written after each transfer (default: version, status, backend).</summary>
    private async Task<string> Curl(string[] args, string format = "%{http_version} %{http_code} %header{x-backend}\\n")
    {
        string[] all = ["-sS", "--cacert", _certificates.CaPath, .. args];
        if (!args.Contains("-w"))
        {
            all = [.. all, "-w", format];
        }
        else
        {
            var index = Array.IndexOf(all, "-w");
            all[index + 1] = format + all[index + 1];
        }

        var result = await CommandLine.RunAsync(CommandLine.Require("curl", "curl"), all, TimeSpan.FromSeconds(60));
        Assert.True(result.ExitCode == 0, result.Error);
        return result.Output;
    }
}
