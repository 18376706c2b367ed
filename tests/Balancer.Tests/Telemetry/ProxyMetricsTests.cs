using System.Net;
using Balancer.Tests.Deployment;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;
using Microsoft.Extensions.Logging.Testing;

namespace Balancer.Tests.Telemetry;

[Collection(FunctionalCollection.Name)]
public sealed class ProxyMetricsTests
{
    private static readonly string[] PerDestination =
    [
        "balancer_destination_up",
        "balancer_destination_active_requests",
        "balancer_destination_request_bytes_total",
        "balancer_destination_response_bytes_total",
        "balancer_destination_request_duration_seconds_count",
    ];

    [Fact]
    public async Task Metrics_AtStartUp_EveryContractSeriesExistsForEveryDestination()
    {
        await using var lb = await BalancerFixture.StartAsync("LeastConnections");

        var samples = await ScrapeAsync(lb);

        foreach (var destination in new[] { "A", "B", "C" })
        {
            foreach (var name in PerDestination)
            {
                Assert.Contains(samples, s => s.Name == name && s.Labels["cluster"] == "backends" && s.Labels["destination"] == destination);
            }

            Assert.Equal(0, samples.Value("balancer_destination_requests_total", ("destination", destination), ("code", "200")));
            Assert.Equal(0, samples.Value("balancer_destination_requests_total", ("destination", destination), ("code", "error")));
            Assert.Equal(1, samples.Value("balancer_destination_up", ("destination", destination)));
        }

        Assert.Equal(1, samples.Value("balancer_cluster_policy_info", ("cluster", "backends"), ("policy", "LeastConnections")));
        Assert.Equal(0, samples.Value("balancer_config_reloads_total", ("result", "success")));
        Assert.Equal(0, samples.Value("balancer_config_reloads_total", ("result", "failure")));
    }

    [Fact]
    public async Task MetricsOff_RequestsAreNotCounted_TheFreeSeriesStay()
    {
        await using var lb = await BalancerFixture.StartAsync(
            "RoundRobin",
            edit: c => c["Balancer"]!["Metrics"] = new System.Text.Json.Nodes.JsonObject { ["Enabled"] = false });

        var answered = new List<string>();
        for (var i = 0; i < 30; i++)
        {
            answered.Add(await lb.GetBackendAsync());
        }

        var samples = await ScrapeAsync(lb);
        Assert.Equal(["A", "B", "C"], answered.Distinct().Order());
        Assert.Equal(0, samples.Sum("balancer_destination_requests_total"));
        Assert.Equal(0, samples.Sum("balancer_destination_response_bytes_total"));
        foreach (var destination in new[] { "A", "B", "C" })
        {
            Assert.Equal(1, samples.Value("balancer_destination_up", ("destination", destination)));
            Assert.Equal(0, samples.Value("balancer_destination_request_duration_seconds_count", ("destination", destination)));
        }

        Assert.Equal(1, samples.Value("balancer_cluster_policy_info", ("cluster", "backends"), ("policy", "RoundRobin")));
    }

    [Fact]
    public async Task PerDestinationHistogramsOff_CountersStayPerDestination_DurationsGoToTheClusterHistogram()
    {
        await using var full = await BalancerFixture.StartAsync("RoundRobin");
        await using var lb = await BalancerFixture.StartAsync(
            "RoundRobin",
            edit: c => c["Balancer"]!["Metrics"] = new System.Text.Json.Nodes.JsonObject { ["PerDestinationHistograms"] = false });
        var seriesPerDestination = (await ScrapeAsync(full)).Count(s => s.Labels.GetValueOrDefault("destination") == "A");
        Assert.Equal(seriesPerDestination - 18, (await ScrapeAsync(lb)).Count(s => s.Labels.GetValueOrDefault("destination") == "A"));

        for (var i = 0; i < 30; i++)
        {
            await lb.GetBackendAsync();
        }

        var text = await lb.Management.GetStringAsync("/metrics");
        var samples = PrometheusText.Parse(text);
        foreach (var destination in new[] { "A", "B", "C" })
        {
            Assert.Equal(10, samples.Value("balancer_destination_requests_total", ("destination", destination), ("code", "200")));
        }

        Assert.DoesNotContain(samples, s => s.Name.StartsWith("balancer_destination_request_duration_seconds", StringComparison.Ordinal));
        Assert.Equal(30, samples.Value("balancer_cluster_request_duration_seconds_count", ("cluster", "backends")));
        Assert.Equal(30, samples.Value("balancer_cluster_request_duration_seconds_bucket", ("cluster", "backends"), ("le", "+Inf")));
        var check = Repo.Run("promtool", ["check", "metrics"], stdin: text);
        Assert.True(check.ExitCode == 0 && check.Stdout.Trim().Length == 0 && check.Stderr.Trim().Length == 0, check.ToString());
    }

    [Fact]
    public async Task PerDestinationHistogramsUnset_ClusterAboveTheLimit_KeepsOneHistogram_SwitchesBackWhenItShrinks()
    {
        await using var lb = await BalancerFixture.StartAsync(
            "RoundRobin",
            edit: c => c["Balancer"]!["Metrics"] = new System.Text.Json.Nodes.JsonObject { ["PerDestinationHistogramsMaxDestinations"] = 2 },
            configure: b => b.Logging.AddFakeLogging());
        for (var i = 0; i < 30; i++)
        {
            await lb.GetBackendAsync();
        }

        // Three destinations, more than 2: one histogram for the cluster, the counters still per destination.
        var text = await lb.Management.GetStringAsync("/metrics");
        var samples = PrometheusText.Parse(text);
        Assert.DoesNotContain(samples, s => s.Name.StartsWith("balancer_destination_request_duration_seconds", StringComparison.Ordinal));
        Assert.Equal(30, samples.Value("balancer_cluster_request_duration_seconds_count", ("cluster", "backends")));
        Assert.Equal(10, samples.Value("balancer_destination_requests_total", ("destination", "C"), ("code", "200")));
        Assert.Equal("cluster", (string?)(await lb.StatusAsync())["clusters"]![0]!["latencyHistogram"]);
        var check = Repo.Run("promtool", ["check", "metrics"], stdin: text);
        Assert.True(check.ExitCode == 0 && check.Stdout.Trim().Length == 0 && check.Stderr.Trim().Length == 0, check.ToString());
        var logged = Assert.Single(lb.App.Services.GetFakeLogCollector().GetSnapshot(), r => r.Id.Id == 1401);
        Assert.Contains("Cluster backends has 3 destinations", logged.Message, StringComparison.Ordinal);

        // Down to two: per destination again from the next scrape, the cluster's histogram gone.
        lb.WriteConfig("RoundRobin", config => config["ReverseProxy"]!["Clusters"]!["backends"]!["Destinations"]!.AsObject().Remove("C"));
        await Poll.UntilAsync(
            async () => (await ScrapeAsync(lb)).Any(s => s.Name == "balancer_destination_request_duration_seconds_count"),
            TimeSpan.FromSeconds(10),
            "per-destination histograms after the cluster shrank to 2");
        for (var i = 0; i < 10; i++)
        {
            await lb.GetBackendAsync();
        }

        samples = await ScrapeAsync(lb);
        Assert.DoesNotContain(samples, s => s.Name.StartsWith("balancer_cluster_request_duration_seconds", StringComparison.Ordinal));
        Assert.Equal(5, samples.Value("balancer_destination_request_duration_seconds_count", ("destination", "A")));
        Assert.Equal(5, samples.Value("balancer_destination_request_duration_seconds_bucket", ("destination", "B"), ("le", "+Inf")));
        Assert.Equal("destination", (string?)(await lb.StatusAsync())["clusters"]![0]!["latencyHistogram"]);
        Assert.Single(lb.App.Services.GetFakeLogCollector().GetSnapshot(), r => r.Id.Id == 1402);
    }

    [Fact]
    public async Task Metrics_After300Requests_RequestsTotalMovesByExactly300_100PerDestination()
    {
        await using var lb = await BalancerFixture.StartAsync("RoundRobin");
        var before = await ScrapeAsync(lb);

        for (var i = 0; i < 300; i++)
        {
            await lb.GetBackendAsync();
        }

        var after = await ScrapeAsync(lb);
        Assert.Equal(300, after.Sum("balancer_destination_requests_total") - before.Sum("balancer_destination_requests_total"));
        foreach (var destination in new[] { "A", "B", "C" })
        {
            Assert.Equal(100, after.Value("balancer_destination_requests_total", ("destination", destination), ("code", "200")));
            Assert.Equal(100, after.Value("balancer_destination_request_duration_seconds_count", ("destination", destination)));
        }

        var status = await lb.StatusAsync();
        Assert.All(status["clusters"]![0]!["destinations"]!.AsArray(), d => Assert.Equal(100, (long)d!["requests"]!));
    }

    [Fact]
    public async Task Metrics_AfterTrafficAndErrors_PassPromtoolCheckMetrics()
    {
        await using var lb = await BalancerFixture.StartAsync("RoundRobin");
        for (var i = 0; i < 6; i++)
        {
            using var response = await lb.Client.GetAsync(i % 2 == 0 ? "/" : "/no/such/path");
        }

        await lb.Backend("C").KillAsync();
        for (var i = 0; i < 3; i++)
        {
            using var response = await lb.Client.GetAsync("/");
        }

        var text = await lb.Management.GetStringAsync("/metrics");

        // Every kind of series present: 200 and 404 codes, a transport error and its retry, filled histograms.
        var samples = PrometheusText.Parse(text);
        Assert.Contains(samples, s => s.Name == "balancer_destination_requests_total" && s.Labels["code"] == "404" && s.Value > 0);
        Assert.Contains(samples, s => s.Name == "balancer_destination_requests_total" && s.Labels["code"] == "error" && s.Value > 0);
        Assert.Contains(samples, s => s.Name == "balancer_retries_total" && s.Value > 0);
        var check = Repo.Run("promtool", ["check", "metrics"], stdin: text);
        Assert.True(check.ExitCode == 0 && check.Stdout.Trim().Length == 0 && check.Stderr.Trim().Length == 0, check.ToString());
    }

    [Fact]
    public async Task Metrics_BytesCountedBothWays_AndStatusCodesLabelled()
    {
        await using var lb = await BalancerFixture.StartAsync("RoundRobin", config =>
        {
            var destinations = config["ReverseProxy"]!["Clusters"]!["backends"]!["Destinations"]!.AsObject();
            destinations.Remove("B");
            destinations.Remove("C");
        });
        var body = new byte[10_000];
        using var upload = new MultipartFormDataContent { { new ByteArrayContent(body), "file", "f.bin" } };
        await upload.LoadIntoBufferAsync();
        var uploadLength = upload.Headers.ContentLength!.Value;

        using var posted = await lb.Client.PostAsync("/api/upload", upload);
        var postedLength = (await posted.Content.ReadAsByteArrayAsync()).Length;
        using var missing = await lb.Client.GetAsync("/no/such/path");
        var missingLength = (await missing.Content.ReadAsByteArrayAsync()).Length;

        Assert.Equal(HttpStatusCode.OK, posted.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        var samples = await ScrapeAsync(lb);
        Assert.Equal(uploadLength, samples.Value("balancer_destination_request_bytes_total", ("destination", "A")));
        Assert.Equal(postedLength + missingLength, samples.Value("balancer_destination_response_bytes_total", ("destination", "A")));
        Assert.Equal(1, samples.Value("balancer_destination_requests_total", ("destination", "A"), ("code", "404")));
    }

    [Fact]
    public async Task Metrics_PolicySwitchAndRejectedReload_ShowInPolicyInfoAndReloadCounts()
    {
        await using var lb = await BalancerFixture.StartAsync("RoundRobin");

        lb.WriteConfig("IpHash");
        await Poll.UntilAsync(async () => (await ScrapeAsync(lb)).Any(s => s.Name == "balancer_cluster_policy_info" && s.Labels["policy"] == "IpHash"), TimeSpan.FromSeconds(5), "IpHash in policy info");
        lb.WriteConfig("Bogus");
        await Poll.UntilAsync(async () => (await ScrapeAsync(lb)).Value("balancer_config_reloads_total", ("result", "failure")) == 1, TimeSpan.FromSeconds(10), "one failed reload");

        var samples = await ScrapeAsync(lb);
        Assert.Single(samples, s => s.Name == "balancer_cluster_policy_info");
        Assert.Equal(1, samples.Value("balancer_cluster_policy_info", ("policy", "IpHash")));
        Assert.Equal(1, samples.Value("balancer_config_reloads_total", ("result", "success")));
    }

    [Fact]
    public async Task Metrics_DestinationRemovedFromConfig_LosesItsSeries()
    {
        await using var lb = await BalancerFixture.StartAsync("RoundRobin");

        lb.WriteConfig("RoundRobin", config => config["ReverseProxy"]!["Clusters"]!["backends"]!["Destinations"]!.AsObject().Remove("C"));
        await Poll.UntilAsync(async () => !(await ScrapeAsync(lb)).Any(s => s.Labels.GetValueOrDefault("destination") == "C"), TimeSpan.FromSeconds(5), "C's series to go");

        Assert.Contains(await ScrapeAsync(lb), s => s.Name == "balancer_destination_up" && s.Labels["destination"] == "B");
    }

    private static async Task<List<PrometheusText.Sample>> ScrapeAsync(BalancerFixture lb) =>
        PrometheusText.Parse(await lb.Management.GetStringAsync("/metrics"));
}
