using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;
using Microsoft.Extensions.Logging.Testing;

namespace Balancer.Tests.Management;

/// <summary>The management token: who gets /status, /metrics and the page, on loopback and elsewhere.</summary>
[Collection(FunctionalCollection.Name)]
public sealed class ManagementAccessTests
{
    private const string Token = "0123456789abcdef-test-token";

    public static TheoryData<string> ProtectedPaths => ["/status", "/metrics", "/", "/index.html", "/nope"];

    [Theory]
    [MemberData(nameof(ProtectedPaths))]
    public async Task TokenSet_OnLoopback_EveryPathButHealthzNeedsIt(string path)
    {
        await using var lb = await BalancerFixture.StartAsync(edit: Management(token: Token));

        using var anonymous = await lb.Management.GetAsync(path);
        using var wrong = await SendAsync(lb, path, new AuthenticationHeaderValue("Bearer", Token + "x"));
        using var prefix = await SendAsync(lb, path, new AuthenticationHeaderValue("Bearer", Token[..^1]));
        using var bearer = await SendAsync(lb, path, new AuthenticationHeaderValue("Bearer", Token));
        using var basic = await SendAsync(lb, path, new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("anyone:" + Token))));

        foreach (var refused in new[] { anonymous, wrong, prefix })
        {
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            Assert.Equal(["Bearer realm=\"balancer-management\"", "Basic realm=\"balancer-management\", charset=\"UTF-8\""], refused.Headers.WwwAuthenticate.Select(h => h.ToString()));
            Assert.Contains("Authorization: Bearer", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        Assert.NotEqual(HttpStatusCode.Unauthorized, bearer.StatusCode);
        Assert.Equal(bearer.StatusCode, basic.StatusCode);
        Assert.Equal(path == "/nope" ? HttpStatusCode.NotFound : HttpStatusCode.OK, bearer.StatusCode);
        Assert.Equal("ok\n", await lb.Management.GetStringAsync("/healthz"));
    }

    [Fact]
    public async Task NotOnLoopback_NoToken_Answers401ButHealthz_AndWarnsAtStart()
    {
        await using var lb = await BalancerFixture.StartAsync(edit: Management(listen: "http://0.0.0.0:0"), configure: b => b.Logging.AddFakeLogging());

        using var status = await lb.Management.GetAsync("/status");

        Assert.Equal(HttpStatusCode.Unauthorized, status.StatusCode);
        Assert.Contains("no token is set", await status.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Unauthorized, (await lb.Management.GetAsync("/metrics")).StatusCode);
        Assert.Equal("ok\n", await lb.Management.GetStringAsync("/healthz"));
        var warning = Assert.Single(lb.App.Services.GetFakeLogCollector().GetSnapshot(), r => r.Id.Id == 1201);
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains("http://0.0.0.0:0 is not on loopback and has no token", warning.Message, StringComparison.Ordinal);
        Assert.Contains("Balancer__Management__Token", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NotOnLoopback_AllowAnonymous_Serves_AndWarnsAtStart()
    {
        await using var lb = await BalancerFixture.StartAsync(edit: Management(listen: "http://0.0.0.0:0", allowAnonymous: true), configure: b => b.Logging.AddFakeLogging());

        using var status = await lb.Management.GetAsync("/status");

        Assert.Equal(HttpStatusCode.OK, status.StatusCode);
        var warning = Assert.Single(lb.App.Services.GetFakeLogCollector().GetSnapshot(), r => r.Id.Id == 1202);
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains("anyone who can reach it can read /status and /metrics", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OnLoopback_NoToken_IsOpen_WithoutWarning()
    {
        await using var lb = await BalancerFixture.StartAsync(configure: b => b.Logging.AddFakeLogging());

        Assert.Equal(HttpStatusCode.OK, (await lb.Management.GetAsync("/status")).StatusCode);
        Assert.DoesNotContain(lb.App.Services.GetFakeLogCollector().GetSnapshot(), r => r.Id.Id is 1201 or 1202);
    }

    [Fact]
    public async Task TokenChangedInTheFile_AppliesWithoutRestart()
    {
        const string next = "fedcba9876543210-rotated-token";
        await using var lb = await BalancerFixture.StartAsync(edit: Management(token: Token));
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(lb, "/status", new AuthenticationHeaderValue("Bearer", Token))).StatusCode);

        lb.WriteConfig("RoundRobin", Management(token: next));
        await Poll.UntilAsync(
            async () => (await SendAsync(lb, "/status", new AuthenticationHeaderValue("Bearer", next))).StatusCode == HttpStatusCode.OK,
            TimeSpan.FromSeconds(10),
            "the new token to be accepted");

        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(lb, "/status", new AuthenticationHeaderValue("Bearer", Token))).StatusCode);
    }

    [Fact]
    public async Task RealProcess_TokenFromEnvironment_ProtectsAPublicListener_ProbeStillWorks()
    {
        await using var backend = await BackendHost.StartAsync("A");
        var directory = Directory.CreateTempSubdirectory("balancer-token-").FullName;
        try
        {
            var config = Path.Combine(directory, "balancer.json");
            File.WriteAllText(config, $$"""
                { "Balancer": { "Listen": "http://127.0.0.1:0", "Management": { "Listen": "http://0.0.0.0:0" } },
                  "ReverseProxy": { "Routes": { "r": { "ClusterId": "c", "Match": { "Path": "{**all}" } } },
                  "Clusters": { "c": { "Destinations": { "A": { "Address": "{{backend.Address}}" } } } } } }
                """);
            await using var balancer = BalancerProcess.Start(["--config", config], new Dictionary<string, string> { ["Balancer__Management__Token"] = Token });
            var (_, management) = await balancer.ListenersAsync(TimeSpan.FromSeconds(60));
            using var client = new HttpClient { BaseAddress = management };

            Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/status")).StatusCode);
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token);
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/status")).StatusCode);
            Assert.DoesNotContain("has no token", balancer.Output, StringComparison.Ordinal);
            await using var probe = BalancerProcess.Start(["--probe", new Uri(management, "/status").ToString()], new Dictionary<string, string> { ["Balancer__Management__Token"] = Token });
            Assert.Equal(0, await probe.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static Action<JsonObject> Management(string? listen = null, string? token = null, bool allowAnonymous = false) => config =>
    {
        var management = config["Balancer"]!["Management"]!.AsObject();
        if (listen is not null)
        {
            management["Listen"] = listen;
        }

        if (token is not null)
        {
            management["Token"] = token;
        }

        if (allowAnonymous)
        {
            management["AllowAnonymous"] = true;
        }
    };

    private static async Task<HttpResponseMessage> SendAsync(BalancerFixture lb, string path, AuthenticationHeaderValue authorization)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path) { Headers = { Authorization = authorization } };
        return await lb.Management.SendAsync(request);
    }
}
