using System.Text.Json.Nodes;
using Balancer.Tests.Deployment;
using Balancer.Tests.Health;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;

namespace Balancer.Tests.Telemetry;

/// <summary>
/// The dashboard against a real Prometheus scraping a real balancer and its three backends under traffic,
/// with the repository's prometheus.yml (only the targets rewritten to the loopback ports, scrape every 1 s).
/// </summary>
[Collection(IntegrationCollection.Name)]
public sealed class DashboardLiveTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    /// <param name="perDestinationHistograms">False: the latency panel reads the cluster's histogram instead.</param>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Dashboard_OnRealPrometheus_EveryPanelQueryReturnsData_UpDownShowsAKilledBackend_LegendLabelsExist(bool perDestinationHistograms)
    {
        var dashboard = Assert.Single(GrafanaDashboards.All());
        // An https:// listener too, so the certificate expiry panel has a certificate to show, and an h2c one
        // for gRPC calls to the backends' gRPC ports (a second cluster).
        using var certificates = new TestCertificates();
        var https = Tls.TlsConfig.Https(certificates.Issue("server", ["balancer.test"]), "h2c://127.0.0.1:0");
        await using var lb = await BalancerFixture.StartAsync("RoundRobin", config =>
        {
            HealthTestConfig.ActiveAndPassive()(config);
            https(config);
            config["Balancer"]!["Metrics"] = new JsonObject { ["PerDestinationHistograms"] = perDestinationHistograms };
        }, grpc: true);
        await using var prometheus = await PrometheusServer.StartAsync(ScrapeConfig(lb), Deadline);
        await Poll.UntilAsync(async () => (await prometheus.QueryAsync("sum(up)")).SingleOrDefault().Value == 4, Deadline, $"all four targets scraped; Prometheus log:{Environment.NewLine}{prometheus}");

        var clusters = await prometheus.LabelValuesAsync("cluster", "balancer_cluster_policy_info");
        Assert.Equal(["backends", "grpc"], clusters.Order());
        const string cluster = "backends";
        // Every panel for either cluster: the gRPC panels show 0 for a cluster without gRPC traffic too.
        var queries = GrafanaDashboards.Queries(dashboard)
            .SelectMany(q => clusters.Select(c => (Query: q, PromQl: GrafanaDashboards.Substitute(q.Expr, c))))
            .ToList();

        // Before any request, retry or failure: every panel already has its series, and every figure but a
        // latency (there is none without requests) is a number, 0 where nothing happened: "no retries" reads
        // apart from "not scraped".
        var notShown = new List<string>();
        await UntilAsync(
            async () =>
            {
                notShown.Clear();
                foreach (var (query, promql) in queries)
                {
                    var series = await prometheus.QueryAsync(promql);
                    if (series.Count == 0 || (!promql.StartsWith("histogram_quantile", StringComparison.Ordinal) && series.Any(s => !double.IsFinite(s.Value))))
                    {
                        notShown.Add($"{query.Describe} = [{string.Join(", ", series.Select(s => s.Value))}]");
                    }
                }

                return notShown.Count == 0;
            },
            () => "every panel query to return a number from start-up; not yet: " + string.Join(" | ", notShown));
        foreach (var (_, promql) in queries.Where(q => q.Query.Expr.Contains("balancer_retries_total", StringComparison.Ordinal)))
        {
            Assert.Equal(0, (await prometheus.QueryAsync(promql)).Sum(s => s.Value));
        }

        await using var traffic = PacedTraffic.Start(lb.Client, TimeSpan.FromMilliseconds(5));
        // 404s from the backends, so the error panel has a status class to show.
        await using var notFound = PacedTraffic.Start(lb.Client, TimeSpan.FromMilliseconds(50), "/no/such/page");
        // gRPC calls to the second cluster, one in four failing, for the protocol and gRPC panels.
        await using var grpc = PacedGrpcTraffic.Start(lb.ListenerOf("h2c"), TimeSpan.FromMilliseconds(20));
        // A retry to show on the retries panel: the paced traffic alone may lose the race to the next probe
        // (nothing left to retry once B is known down). A slow GET in flight at B when it dies always is one.
        var slow = Enumerable.Range(0, 6).Select(_ => lb.Client.GetAsync("/delay/3000")).ToList();
        await Poll.UntilAsync(async () => (int)(await lb.StatusAsync())["clusters"]![0]!["destinations"]!.AsArray().Single(d => (string?)d!["id"] == "B")!["inFlight"]! > 0, Deadline, "a slow request in flight at B");
        await lb.Backend("B").KillAsync();
        foreach (var response in await Task.WhenAll(slow))
        {
            // Every one answered, those cut off at B by another backend.
            Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
            response.Dispose();
        }

        var upQuery = GrafanaDashboards.Substitute(
            Assert.Single(GrafanaDashboards.Queries(dashboard), q => q.Expr.Contains("balancer_destination_up", StringComparison.Ordinal)).Expr, cluster);
        var expected = new Dictionary<string, double> { ["A"] = 1, ["B"] = 0, ["C"] = 1 };
        Dictionary<string, double> up = [];
        await UntilAsync(
            async () =>
            {
                up = (await prometheus.QueryAsync(upQuery)).ToDictionary(s => s.Labels["destination"], s => s.Value);
                return up.Count == 3 && expected.All(e => up.GetValueOrDefault(e.Key, -1) == e.Value);
            },
            () => $"UP/DOWN to show B down and A, C up; last: {string.Join(", ", up)}");

        // Rate windows need a few scrapes with the killed backend's retries and health change in them.
        var empty = new List<string>();
        await UntilAsync(
            async () =>
            {
                empty.Clear();
                foreach (var (query, promql) in queries)
                {
                    if ((await prometheus.QueryAsync(promql)).Count == 0)
                    {
                        empty.Add(query.Describe);
                    }
                }

                return empty.Count == 0;
            },
            () => "every panel query to return data; still empty: " + string.Join(" | ", empty));

        foreach (var (query, promql) in queries)
        {
            foreach (var series in await prometheus.QueryAsync(promql))
            {
                Assert.All(query.LegendLabels, label => Assert.True(
                    series.Labels.ContainsKey(label),
                    $"legend '{query.Legend}' names {label}, which the series {{{string.Join(",", series.Labels)}}} of {query.Describe} lacks"));
            }
        }

        var latency = GrafanaDashboards.Substitute(
            GrafanaDashboards.Queries(dashboard).First(q => q.Expr.StartsWith("histogram_quantile(0.99,", StringComparison.Ordinal)).Expr, cluster);
        Assert.Equal(
            perDestinationHistograms ? ["A", "B", "C"] : ["all destinations"],
            (await prometheus.QueryAsync(latency)).Select(s => s.Labels["destination"]).Order());

        // Operators' states read apart from DOWN on the same panel: C drained, A in maintenance.
        using (await lb.Management.PostAsync("/api/destinations/backends/C/drain", null))
        using (await lb.Management.PostAsync("/api/destinations/backends/A/maintenance", null))
        {
        }

        var operated = new Dictionary<string, double> { ["A"] = 30, ["B"] = 0, ["C"] = 20 };
        await UntilAsync(
            async () =>
            {
                up = (await prometheus.QueryAsync(upQuery)).ToDictionary(s => s.Labels["destination"], s => s.Value);
                return up.Count == 3 && operated.All(e => up.GetValueOrDefault(e.Key, -1) == e.Value);
            },
            () => $"UP/DOWN to show A in maintenance (30), B down (0), C drained (20); last: {string.Join(", ", up)}");
        var mappings = GrafanaDashboards.Queries(dashboard).Single(q => q.Expr.Contains("balancer_destination_up", StringComparison.Ordinal))
            .Panel["fieldConfig"]!["defaults"]!["mappings"]!.AsArray().Single(m => (string?)m!["type"] == "value")!["options"]!;
        Assert.Equal(["MAINTENANCE", "DOWN", "DRAINED"], up.OrderBy(e => e.Key).Select(e => (string?)mappings[e.Value.ToString(System.Globalization.CultureInfo.InvariantCulture)]!["text"]));
    }

    /// <summary>A poll whose failure message says what was last seen.</summary>
    private static async Task UntilAsync(Func<Task<bool>> condition, Func<string> what)
    {
        try
        {
            await Poll.UntilAsync(condition, Deadline, "the condition below");
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"Timed out after {Deadline.TotalSeconds:0} s waiting for {what()}", e);
        }
    }

    /// <summary>
    /// prometheus.yml as shipped, with its two jobs pointed at this test's balancer and backends and a
    /// 1 s scrape interval. A job the test does not know fails the test: it would mean the file changed.
    /// </summary>
    private static JsonNode ScrapeConfig(BalancerFixture lb)
    {
        var config = Repo.Yaml(Repo.Read("prometheus.yml"));
        config["global"] = new JsonObject { ["scrape_interval"] = "1s", ["scrape_timeout"] = "1s", ["evaluation_interval"] = "1s" };
        foreach (var job in config["scrape_configs"]!.AsArray())
        {
            string[] targets = (string?)job!["job_name"] switch
            {
                "balancer" => [lb.ManagementAddress.Authority],
                "backends" => [.. lb.Backends.Select(b => b.Address.Authority)],
                var name => throw new InvalidOperationException($"prometheus.yml has a job '{name}' this test does not know"),
            };
            job["static_configs"] = new JsonArray(new JsonObject { ["targets"] = new JsonArray([.. targets.Select(t => JsonValue.Create(t))]) });
        }

        return config;
    }
}
