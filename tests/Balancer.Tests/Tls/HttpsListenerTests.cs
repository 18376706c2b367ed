using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;

namespace Balancer.Tests.Tls;

/// <summary>The https:// listener with real clients: curl (ALPN), h2load, openssl s_client (SNI).</summary>
[Collection(FunctionalCollection.Name)]
public sealed class HttpsListenerTests : IDisposable
{
    private readonly TestCertificates _certificates = new();

    [Theory]
    [InlineData("--http2", "2")]
    [InlineData("--http1.1", "1.1")]
    public async Task Curl_OverHttps_NegotiatesByAlpn_AndSpreadsRoundRobinExactly(string curlFlag, string expectedVersion)
    {
        var certificate = _certificates.Issue("server");
        await using var lb = await BalancerFixture.StartAsync("RoundRobin", TlsConfig.Https(certificate));
        var url = new Uri(lb.ListenerOf("https"), "/").ToString();

        // One curl, 30 URLs: one connection (curl reuses it), so the spread is per request, not per connection.
        var result = await CommandLine.RunAsync(
            CommandLine.Require("curl", "curl"),
            ["-sS", curlFlag, "--cacert", _certificates.CaPath, "-w", "%{http_version} %{http_code} %header{x-backend}\\n", .. Enumerable.Repeat(new[] { "-o", "/dev/null", url }, 30).SelectMany(a => a)],
            TimeSpan.FromSeconds(60));

        Assert.True(result.ExitCode == 0, result.Error);
        var lines = result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(30, lines.Length);
        Assert.All(lines, line => Assert.StartsWith($"{expectedVersion} 200 ", line, StringComparison.Ordinal));
        var counts = lines.GroupBy(l => l.Split(' ')[2]).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(new Dictionary<string, int> { ["A"] = 10, ["B"] = 10, ["C"] = 10 }, counts);
    }

    [Fact]
    public async Task H2load_OverTls_AllRequestsSucceed()
    {
        var certificate = _certificates.Issue("server");
        await using var lb = await BalancerFixture.StartAsync("RoundRobin", TlsConfig.Https(certificate));

        var result = await CommandLine.RunAsync(
            CommandLine.Require("h2load", "nghttp2-client"),
            ["-n", "3000", "-c", "10", "-m", "10", new Uri(lb.ListenerOf("https"), "/").ToString()],
            TimeSpan.FromSeconds(120));

        Assert.True(result.ExitCode == 0, result.Output + result.Error);
        Assert.Contains("Application protocol: h2", result.Output, StringComparison.Ordinal);
        var requests = TlsConfig.H2loadRequests().Match(result.Output);
        Assert.True(requests.Success, result.Output);
        Assert.Equal(("3000", "0", "0"), (requests.Groups["succeeded"].Value, requests.Groups["failed"].Value, requests.Groups["errored"].Value));
    }

    [Fact]
    public async Task Sni_TwoNames_GetTheirCertificates_UnknownNameGetsTheDefault()
    {
        var fallback = _certificates.Issue("default", ["default.test"]);
        var api = _certificates.Issue("api", ["api.example.test"]);
        var wildcard = _certificates.Issue("shop", ["*.shop.test"]);
        await using var lb = await BalancerFixture.StartAsync("RoundRobin", config =>
        {
            TlsConfig.Https(fallback)(config);
            TlsConfig.Tls(config)["Sni"] = new System.Text.Json.Nodes.JsonObject
            {
                ["api.example.test"] = new System.Text.Json.Nodes.JsonObject { ["CertificatePath"] = api.CertificatePath, ["KeyPath"] = api.KeyPath },
                ["*.shop.test"] = new System.Text.Json.Nodes.JsonObject { ["CertificatePath"] = wildcard.CertificatePath, ["KeyPath"] = wildcard.KeyPath },
            };
        });
        var https = lb.ListenerOf("https");

        Assert.Equal(api.Serial, await TlsConfig.ServedSerialAsync(https, "api.example.test"));
        Assert.Equal(api.Serial, await TlsConfig.ServedSerialAsync(https, "API.Example.Test"));
        Assert.Equal(wildcard.Serial, await TlsConfig.ServedSerialAsync(https, "eu.shop.test"));
        // A wildcard covers one label, as in certificates themselves.
        Assert.Equal(fallback.Serial, await TlsConfig.ServedSerialAsync(https, "a.b.shop.test"));
        Assert.Equal(fallback.Serial, await TlsConfig.ServedSerialAsync(https, "unknown.example.test"));
        Assert.Equal(fallback.Serial, await TlsConfig.ServedSerialAsync(https, null));
    }

    [Fact]
    public async Task Https_OldProtocols_AreRefused()
    {
        var certificate = _certificates.Issue("server");
        await using var lb = await BalancerFixture.StartAsync("RoundRobin", TlsConfig.Https(certificate));
        var port = lb.ListenerOf("https").Port.ToString(System.Globalization.CultureInfo.InvariantCulture);

        var tls11 = await CommandLine.RunAsync("openssl", ["s_client", "-connect", $"127.0.0.1:{port}", "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"], TimeSpan.FromSeconds(20), input: "");
        var tls12 = await CommandLine.RunAsync("openssl", ["s_client", "-connect", $"127.0.0.1:{port}", "-tls1_2"], TimeSpan.FromSeconds(20), input: "");
        var tls13 = await CommandLine.RunAsync("openssl", ["s_client", "-connect", $"127.0.0.1:{port}", "-tls1_3"], TimeSpan.FromSeconds(20), input: "");

        Assert.NotEqual(0, tls11.ExitCode);
        Assert.Contains("New, TLSv1.2, Cipher is ECDHE-", tls12.Output, StringComparison.Ordinal);
        Assert.Contains("New, TLSv1.3, Cipher is TLS_", tls13.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("-tls1_3", "TLSv1.3")]
    [InlineData("-tls1_2", "TLSv1.2")]
    public async Task Https_ClientResumesItsSession_ByTicket(string protocolFlag, string protocol)
    {
        var certificate = _certificates.Issue("server");
        await using var lb = await BalancerFixture.StartAsync("RoundRobin", TlsConfig.Https(certificate));
        var connect = $"127.0.0.1:{lb.ListenerOf("https").Port}";
        var session = Path.Combine(_certificates.Directory, $"session{protocolFlag}.pem");
        // -ign_eof and a request that closes the connection: the client reads until the server closes, so
        // the session ticket sent after the handshake has arrived before it saves the session.
        const string request = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

        var first = await CommandLine.RunAsync("openssl", ["s_client", "-connect", connect, protocolFlag, "-ign_eof", "-sess_out", session], TimeSpan.FromSeconds(20), input: request);
        var second = await CommandLine.RunAsync("openssl", ["s_client", "-connect", connect, protocolFlag, "-ign_eof", "-sess_in", session], TimeSpan.FromSeconds(20), input: request);

        Assert.Contains($"New, {protocol}, Cipher is ", first.Output, StringComparison.Ordinal);
        Assert.Contains($"Reused, {protocol}, Cipher is ", second.Output, StringComparison.Ordinal);
        Assert.Contains("HTTP/1.1 200 OK", second.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StrictCiphers_TurnedOnLive_RefusesCbcSuites_KeepsAead()
    {
        var certificate = _certificates.Issue("server");
        await using var lb = await BalancerFixture.StartAsync("RoundRobin", TlsConfig.Https(certificate));
        var connect = $"127.0.0.1:{lb.ListenerOf("https").Port}";
        async Task<string> Tls12Async(string cipher) =>
            (await CommandLine.RunAsync("openssl", ["s_client", "-connect", connect, "-tls1_2", "-cipher", cipher], TimeSpan.FromSeconds(20), input: "")).Output;
        const string Cbc = "ECDHE-ECDSA-AES128-SHA256";

        Assert.Contains($"New, TLSv1.2, Cipher is {Cbc}", await Tls12Async(Cbc), StringComparison.Ordinal);
        lb.WriteConfig("RoundRobin", config =>
        {
            TlsConfig.Https(certificate)(config);
            TlsConfig.Tls(config)["StrictCiphers"] = true;
        });

        await Poll.UntilAsync(async () => (await Tls12Async(Cbc)).Contains("Cipher is (NONE)", StringComparison.Ordinal), TimeSpan.FromSeconds(10), "a CBC suite refused");
        Assert.Contains("New, TLSv1.2, Cipher is ECDHE-ECDSA-AES128-GCM-SHA256", await Tls12Async("ECDHE-ECDSA-AES128-GCM-SHA256"), StringComparison.Ordinal);
        Assert.Contains("New, TLSv1.2, Cipher is ECDHE-ECDSA-CHACHA20-POLY1305", await Tls12Async("ECDHE-ECDSA-CHACHA20-POLY1305"), StringComparison.Ordinal);
    }

    public void Dispose() => _certificates.Dispose();
}
