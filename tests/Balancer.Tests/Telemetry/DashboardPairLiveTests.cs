using System.Text.Json.Nodes;
using Balancer.Tests.Deployment;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;

namespace Balancer.Tests.Telemetry;

/// <summary>
/// The dashboard's per-instance panels against a real Prometheus scraping two real balancers as the VMs'
/// prometheus.yml does (its lb1 and lb2 groups, instance labels kept, targets rewritten to loopback): the
/// one taking traffic reads SERVING and the other STANDBY, and a drain followed by the traffic moving to the
/// peer reads as LEAVING, then as the peer SERVING.
/// </summary>
[Collection(IntegrationCollection.Name)]
public sealed class DashboardPairLiveTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Dashboard_TwoBalancers_ShowsWhichOneServes_AndItsRequestsPerSecond_ThroughAFailover()
    {
        var dashboard = Assert.Single(GrafanaDashboards.All());
        var queries = GrafanaDashboards.Queries(dashboard).ToList();
        var serving = GrafanaDashboards.Substitute(Assert.Single(queries, q => q.Expr.Contains("balancer_ready", StringComparison.Ordinal)).Expr, "backends");
        var rps = GrafanaDashboards.Substitute(Assert.Single(queries, q => q.Expr.StartsWith("sum by (instance)", StringComparison.Ordinal)).Expr, "backends");
        await using var lb1 = await BalancerFixture.StartAsync();
        await using var lb2 = await BalancerFixture.StartAsync();
        await using var prometheus = await PrometheusServer.StartAsync(ScrapeConfig(new() { ["lb1"] = lb1, ["lb2"] = lb2 }), Deadline);

        async Task ExpectAsync(string what, double lb1State, double lb2State)
        {
            Dictionary<string, double> states = [];
            Dictionary<string, double> rates = [];
            try
            {
                await Poll.UntilAsync(
                    async () =>
                    {
                        states = (await prometheus.QueryAsync(serving)).ToDictionary(s => s.Labels["instance"], s => s.Value);
                        rates = (await prometheus.QueryAsync(rps)).ToDictionary(s => s.Labels["instance"], s => s.Value);
                        return states.Count == 2 && states.GetValueOrDefault("lb1", -1) == lb1State && states.GetValueOrDefault("lb2", -1) == lb2State
                            && rates.Count == 2 && (rates["lb1"] > 0) == (lb1State >= 2) && (rates["lb2"] > 0) == (lb2State >= 2);
                    },
                    Deadline,
                    what);
            }
            catch (TimeoutException e)
            {
                throw new TimeoutException(
                    $"{what}: expected lb1 {lb1State}, lb2 {lb2State}; last seen {string.Join(", ", states)} at {string.Join(", ", rates)} requests/s; Prometheus log:{Environment.NewLine}{prometheus}", e);
            }
        }

        // 3 SERVING, 1 STANDBY, 2 LEAVING, 0 NOT READY.
        await using (PacedTraffic.Start(lb1.Client, TimeSpan.FromMilliseconds(10)))
        {
            await ExpectAsync("lb1 holds the traffic, lb2 waits", 3, 1);

            using (var drained = await lb1.Management.PostAsync("/api/instance/drain", null))
            {
                drained.EnsureSuccessStatusCode();
            }

            await ExpectAsync("lb1 drained but still proxying", 2, 1);
        }

        await using (PacedTraffic.Start(lb2.Client, TimeSpan.FromMilliseconds(10)))
        {
            await ExpectAsync("the traffic moved to lb2", 0, 3);
        }
    }

    /// <summary>
    /// prometheus.yml's balancer job reduced to its instance-labelled groups, each pointed at that balancer's
    /// management listener, scraped every second. Fails when the file has no group for an instance given.
    /// </summary>
    private static JsonNode ScrapeConfig(Dictionary<string, BalancerFixture> balancers)
    {
        var config = Repo.Yaml(Repo.Read("prometheus.yml"));
        config["global"] = new JsonObject { ["scrape_interval"] = "1s", ["scrape_timeout"] = "1s", ["evaluation_interval"] = "1s" };
        var job = config["scrape_configs"]!.AsArray().Single(j => (string?)j!["job_name"] == "balancer")!.DeepClone();
        var groups = job["static_configs"]!.AsArray().Where(g => g!["labels"]?["instance"] is not null).Select(g => g!.DeepClone()).ToList();
        Assert.Equal(balancers.Keys.Order(StringComparer.Ordinal), groups.Select(g => (string)g["labels"]!["instance"]!).Order(StringComparer.Ordinal));
        foreach (var group in groups)
        {
            group["targets"] = new JsonArray(JsonValue.Create(balancers[(string)group["labels"]!["instance"]!].ManagementAddress.Authority));
        }

        job["static_configs"] = new JsonArray([.. groups]);
        config["scrape_configs"] = new JsonArray(job);
        return config;
    }
}
