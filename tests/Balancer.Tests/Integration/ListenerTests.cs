using System.Net;
using Balancer.Tests.Infrastructure;

namespace Balancer.Tests.Integration;

[Collection(IntegrationCollection.Name)]
public sealed class ListenerTests
{
    [Theory]
    [InlineData("/status")]
    [InlineData("/healthz")]
    [InlineData("/metrics")]
    public async Task ManagementPaths_OnProxyListener_AreForwardedToBackends(string path)
    {
        await using var lb = await BalancerFixture.StartAsync();

        using var response = await lb.Client.GetAsync(path);

        // The backend answered (it stamps X-Backend), not the balancer's management code.
        Assert.True(response.Headers.Contains("X-Backend"));
    }

    [Fact]
    public async Task Management_Healthz_AnswersOk()
    {
        await using var lb = await BalancerFixture.StartAsync();

        Assert.Equal("ok\n", await lb.Management.GetStringAsync("/healthz"));
    }

    [Fact]
    public async Task Management_Metrics_ServesPrometheusExposition()
    {
        await using var lb = await BalancerFixture.StartAsync();

        using var response = await lb.Management.GetAsync("/metrics");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.False(response.Headers.Contains("X-Backend"));
    }

    [Fact]
    public async Task Management_Status_ListsClusterPolicyAndDestinations()
    {
        await using var lb = await BalancerFixture.StartAsync("LeastConnections");

        var cluster = (await lb.StatusAsync())["clusters"]![0]!;

        Assert.Equal("backends", (string)cluster["id"]!);
        Assert.Equal("LeastConnections", (string)cluster["policy"]!);
        var destinations = cluster["destinations"]!.AsArray();
        Assert.Equal(["A", "B", "C"], destinations.Select(d => (string)d!["id"]!));
        Assert.Equal(lb.Backends.Select(b => b.Address.ToString()), destinations.Select(d => (string)d!["address"]!));
        Assert.All(destinations, d => Assert.Equal(1, (int)d!["weight"]!));
    }

    [Fact]
    public async Task AllBackendsUnhealthy_Answers503AtOnce_WithRetryAfterAndBody()
    {
        await using var lb = await BalancerFixture.StartAsync("RoundRobin", config =>
            config["ReverseProxy"]!["Clusters"]!["backends"]!["HealthCheck"] = System.Text.Json.Nodes.JsonNode.Parse(
                """{ "Active": { "Enabled": true, "Interval": "00:00:00.200", "Timeout": "00:00:01", "Policy": "ConsecutiveFailures", "Path": "/health" } }"""));
        lb.Client.Timeout = TimeSpan.FromSeconds(5);
        foreach (var backend in lb.Backends)
        {
            backend.State.Healthy = false;
        }

        await Poll.UntilAsync(
            async () => (await lb.StatusAsync())["clusters"]![0]!["destinations"]!.AsArray().All(d => (string)d!["health"]! == "Down"),
            TimeSpan.FromSeconds(10),
            "all destinations down");
        var started = System.Diagnostics.Stopwatch.StartNew();
        using var response = await lb.Client.GetAsync("/");
        started.Stop();

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(1), $"took {started.Elapsed}");
        Assert.Equal("1", response.Headers.GetValues("Retry-After").Single());
        Assert.Contains("no healthy backend", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.False(response.Headers.Contains("X-Backend"));
    }
}
