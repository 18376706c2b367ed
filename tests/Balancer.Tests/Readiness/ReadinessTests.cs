using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Balancer.Tests.Health;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;

namespace Balancer.Tests.Readiness;

/// <summary><c>/readyz</c> against real backends, and the operator's drain switch on the management API.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class ReadinessTests
{
    private const string Token = "0123456789abcdef-test-token";

    [Fact]
    public async Task Readyz_EveryBackendDown_503NamingTheCluster_HealthzStays200_OneBack_200Again()
    {
        await using var lb = await BalancerFixture.StartAsync(edit: HealthTestConfig.ActiveAndPassive());
        await AssertReadyAsync(lb);
        Assert.Equal(1, await ReadyGaugeAsync(lb));

        foreach (var backend in lb.Backends)
        {
            backend.State.Healthy = false;
        }

        await Poll.UntilAsync(async () => (await lb.Management.GetAsync("/readyz")).StatusCode == HttpStatusCode.ServiceUnavailable, TimeSpan.FromSeconds(10), "/readyz to turn 503");
        using (var notReady = await lb.Management.GetAsync("/readyz"))
        {
            Assert.Equal("not ready: cluster 'backends': no available destination\n", await notReady.Content.ReadAsStringAsync());
            Assert.Equal("no-store", notReady.Headers.CacheControl?.ToString());
        }

        Assert.Equal("ok\n", await lb.Management.GetStringAsync("/healthz"));
        Assert.Equal(0, await ReadyGaugeAsync(lb));

        lb.Backend("B").State.Healthy = true;
        await Poll.UntilAsync(async () => (await lb.Management.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(10), "/readyz to turn 200 with B back");
        Assert.Equal(1, await ReadyGaugeAsync(lb));
    }

    [Fact]
    public async Task Readyz_TwoOfThreeDown_StaysReady()
    {
        await using var lb = await BalancerFixture.StartAsync(edit: HealthTestConfig.ActiveAndPassive());
        lb.Backend("A").State.Healthy = false;
        lb.Backend("C").State.Healthy = false;

        await HealthTestConfig.WaitForHealthAsync(lb, "A", "Down", TimeSpan.FromSeconds(10));
        await HealthTestConfig.WaitForHealthAsync(lb, "C", "Down", TimeSpan.FromSeconds(10));
        // The very first probe of a cold host can time out; B counts once a probe has found it healthy.
        await HealthTestConfig.WaitForHealthAsync(lb, "B", "Up", TimeSpan.FromSeconds(10));

        await AssertReadyAsync(lb);
    }

    [Fact]
    public async Task Readyz_OneOfTwoRoutedClustersHasNoLiveDestination_503NamingIt()
    {
        // A second routed cluster whose only destination refuses connections: its route cannot be served.
        await using var lb = await BalancerFixture.StartAsync(edit: config =>
        {
            HealthTestConfig.ActiveAndPassive()(config);
            var other = HealthTestConfig.Cluster(config).DeepClone().AsObject();
            other["Destinations"] = new JsonObject { ["X"] = new JsonObject { ["Address"] = "http://127.0.0.1:1/" } };
            config["ReverseProxy"]!["Clusters"]!["other"] = other;
            config["ReverseProxy"]!["Routes"]!["other"] = new JsonObject { ["ClusterId"] = "other", ["Match"] = new JsonObject { ["Path"] = "/other/{**rest}" } };
        });

        await Poll.UntilAsync(async () => (await lb.Management.GetAsync("/readyz")).StatusCode == HttpStatusCode.ServiceUnavailable, TimeSpan.FromSeconds(10), "/readyz to turn 503");
        using var response = await lb.Management.GetAsync("/readyz");

        Assert.Equal("not ready: cluster 'other': no available destination\n", await response.Content.ReadAsStringAsync());
        Assert.Equal("A", (await lb.CountBackendsAsync(3)).Keys.Order(StringComparer.Ordinal).First());
    }

    [Fact]
    public async Task InstanceDrain_Readyz503_ProxyKeepsServing_EnableUndoes()
    {
        await using var lb = await BalancerFixture.StartAsync();
        await AssertReadyAsync(lb);

        using var drained = await lb.Management.PostAsync("/api/instance/drain", null);
        var drainedState = JsonNode.Parse(await drained.Content.ReadAsStringAsync())!;

        Assert.Equal(HttpStatusCode.OK, drained.StatusCode);
        Assert.Equal("drained", (string?)drainedState["state"]);
        Assert.False((bool)drainedState["ready"]!);
        using (var readyz = await lb.Management.GetAsync("/readyz"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, readyz.StatusCode);
            Assert.Equal("not ready: drained by the operator (POST /api/instance/enable to undo)\n", await readyz.Content.ReadAsStringAsync());
        }

        // Maintenance, not shutdown: whatever still arrives is proxied.
        Assert.Equal(["A", "B", "C"], (await lb.CountBackendsAsync(3)).Keys.Order(StringComparer.Ordinal));
        Assert.Equal("drained", (string?)JsonNode.Parse(await lb.Management.GetStringAsync("/api/instance"))!["state"]);

        using var enabled = await lb.Management.PostAsync("/api/instance/enable", null);

        Assert.Equal(HttpStatusCode.OK, enabled.StatusCode);
        Assert.True((bool)JsonNode.Parse(await enabled.Content.ReadAsStringAsync())!["ready"]!);
        await AssertReadyAsync(lb);
    }

    [Theory]
    [InlineData("GET", "/api/instance/drain", "POST")]
    [InlineData("PUT", "/api/instance/enable", "POST")]
    [InlineData("POST", "/api/instance", "GET, HEAD")]
    [InlineData("POST", "/readyz", "GET, HEAD")]
    public async Task InstanceApi_WrongMethod_405_NothingChanges(string method, string path, string allow)
    {
        await using var lb = await BalancerFixture.StartAsync();

        using var response = await lb.Management.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));

        Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
        Assert.Equal(allow, string.Join(", ", response.Content.Headers.Allow));
        await AssertReadyAsync(lb);
    }

    [Fact]
    public async Task TokenSet_ReadyzIsOpen_InstanceApiNeedsTheToken()
    {
        await using var lb = await BalancerFixture.StartAsync(edit: c => c["Balancer"]!["Management"]!["Token"] = Token);

        await AssertReadyAsync(lb);
        using var anonymous = await lb.Management.PostAsync("/api/instance/drain", null);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        await AssertReadyAsync(lb);

        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/instance/drain") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", Token) } };
        using var authorized = await lb.Management.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, authorized.StatusCode);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await lb.Management.GetAsync("/readyz")).StatusCode);
    }

    [Fact]
    public async Task InstanceDrain_ProxiedAnswersCloseTheConnection_EnableKeepsItAliveAgain()
    {
        await using var lb = await BalancerFixture.StartAsync();
        using (var before = await lb.Client.GetAsync("/"))
        {
            Assert.False(before.Headers.ConnectionClose ?? false);
        }

        using (await lb.Management.PostAsync("/api/instance/drain", null))
        {
        }

        using (var drained = await lb.Client.GetAsync("/"))
        {
            Assert.Equal(HttpStatusCode.OK, drained.StatusCode);
            Assert.True(drained.Headers.ConnectionClose, "A drained instance should end kept-alive connections, so clients reconnect to the address's new holder.");
        }

        using (await lb.Management.PostAsync("/api/instance/enable", null))
        {
        }

        using var enabled = await lb.Client.GetAsync("/");
        Assert.False(enabled.Headers.ConnectionClose ?? false);
    }

    private static async Task AssertReadyAsync(BalancerFixture lb)
    {
        using var response = await lb.Management.GetAsync("/readyz");
        Assert.Equal("ready\n", await response.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    private static async Task<double> ReadyGaugeAsync(BalancerFixture lb) =>
        Assert.Single(await lb.MetricsAsync(), s => s.Name == "balancer_ready").Value;
}
