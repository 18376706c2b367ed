using System.Text.Json.Nodes;
using Balancer.Health;
using Balancer.Hosting;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;
using Microsoft.Extensions.Logging.Testing;

namespace Balancer.Tests.Hosting;

/// <summary>A balancer runs the health path once as it starts, and nothing an operator reads shows that it did.</summary>
[Collection(FunctionalCollection.Name)]
public sealed class HealthPathWarmUpHostTests
{
    [Fact]
    public async Task Start_RunsTheHealthPathOnce_LeavingNoTraceInMetricsStatusHealthOrLog()
    {
        await using var lb = await BalancerFixture.StartAsync(configure: b => b.Logging.AddFakeLogging());

        Assert.Equal(new HealthPathWarmUp.Report("Up", 2, 1, true, 2, true, 3, 1), lb.App.Services.GetRequiredService<HealthPathWarmUp>().Ran);
        var metrics = await lb.Management.GetStringAsync("/metrics");
        Assert.DoesNotContain("warm-up", metrics, StringComparison.Ordinal);
        Assert.Contains("balancer_destination_up{cluster=\"backends\",destination=\"A\"}", metrics, StringComparison.Ordinal);
        var clusters = JsonNode.Parse(await lb.Management.GetStringAsync("/status"))!["clusters"]!.AsArray();
        var cluster = Assert.Single(clusters)!;
        Assert.Equal("backends", (string?)cluster["id"]);
        Assert.Equal(["A", "B", "C"], cluster["destinations"]!.AsArray().Select(d => (string?)d!["id"]));
        Assert.Null(lb.App.Services.GetRequiredService<DestinationHealthTracker>().LastChange("health-path-warm-up", "warm-up"));
        Assert.DoesNotContain(lb.App.Services.GetFakeLogCollector().GetSnapshot(), r => r.Message.Contains("warm-up", StringComparison.Ordinal) || r.Id.Id is 3001 or 3002);
    }
}
