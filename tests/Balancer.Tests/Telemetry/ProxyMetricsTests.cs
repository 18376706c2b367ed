using System.Net;
using Balancer.Tests.Deployment;
using Balancer.Tests.Health;
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

    [Fact]
    public async Task Metrics_PerDestinationFamilies_ExactLines_InTheTextFormatAndInOpenMetrics()
    {
        await using var lb = await BalancerFixture.StartAsync("RoundRobin");
        // Round robin over three equal destinations: any three requests in a row reach each destination once.
        for (var i = 0; i < 3; i++)
        {
            await lb.GetBackendAsync("/");
        }

        for (var i = 0; i < 3; i++)
        {
            using var missing = await lb.Client.GetAsync("/no-such-path");
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        }

        using (var maintenance = await lb.Management.PostAsync("/api/destinations/backends/B/maintenance", null))
        {
            Assert.Equal(HttpStatusCode.OK, maintenance.StatusCode);
        }

        await Poll.UntilAsync(
            async () => (await ScrapeAsync(lb)).Value("balancer_destination_up", ("destination", "B")) == 0,
            TimeSpan.FromSeconds(10),
            "B out of the available set");
        var text = await lb.Management.GetStringAsync("/metrics");
        var responseBytes = (long)PrometheusText.Parse(text).Value("balancer_destination_response_bytes_total", ("destination", "B"));
        Assert.True(responseBytes > 0, $"B answered two requests but counted {responseBytes} response bytes");
        Assert.Equal(
            $$"""
            # HELP balancer_destination_up 1 while the destination is eligible for traffic, 0 while it is DOWN.
            # TYPE balancer_destination_up gauge
            balancer_destination_up{cluster="backends",destination="B"} 0
            # HELP balancer_destination_active_requests Requests in flight to the destination now.
            # TYPE balancer_destination_active_requests gauge
            balancer_destination_active_requests{cluster="backends",destination="B"} 0
            # HELP balancer_destination_state Runtime state set by operators: 0 Active, 1 Draining (no new requests, some in flight), 2 Drained, 3 Maintenance (drained, not probed).
            # TYPE balancer_destination_state gauge
            balancer_destination_state{cluster="backends",destination="B"} 3
            # HELP balancer_destination_requests_total Requests proxied to the destination, by HTTP status (code="error" for transport failures). Each retry attempt counts at the destination it went to; health probes are not counted.
            # TYPE balancer_destination_requests_total counter
            balancer_destination_requests_total{cluster="backends",destination="B",code="200"} 1
            balancer_destination_requests_total{cluster="backends",destination="B",code="404"} 1
            balancer_destination_requests_total{cluster="backends",destination="B",code="error"} 0
            # HELP balancer_destination_request_bytes_total Request body bytes sent to the destination.
            # TYPE balancer_destination_request_bytes_total counter
            balancer_destination_request_bytes_total{cluster="backends",destination="B"} 0
            # HELP balancer_destination_response_bytes_total Response body bytes received from the destination.
            # TYPE balancer_destination_response_bytes_total counter
            balancer_destination_response_bytes_total{cluster="backends",destination="B"} {{responseBytes}}
            # HELP balancer_destination_grpc_calls_total gRPC calls answered through the destination, by the gRPC status the client was sent (grpc_status="OK" or the name of the error). HTTP status 200 says nothing about a gRPC call's outcome; this does.
            # TYPE balancer_destination_grpc_calls_total counter
            balancer_destination_grpc_calls_total{cluster="backends",destination="B",grpc_status="OK"} 0
            balancer_destination_grpc_calls_total{cluster="backends",destination="B",grpc_status="UNAVAILABLE"} 0
            """,
            FamiliesOf(text, "B"));
        Assert.Equal(
            "balancer_destination_state{cluster=\"backends\",destination=\"A\"} 0",
            Assert.Single(text.Split('\n'), l => l.StartsWith("balancer_destination_state{", StringComparison.Ordinal) && l.Contains("destination=\"A\"", StringComparison.Ordinal)));

        using var request = new HttpRequestMessage(HttpMethod.Get, "/metrics");
        request.Headers.Accept.ParseAdd("application/openmetrics-text; version=1.0.0");
        using var response = await lb.Management.SendAsync(request);
        var open = await response.Content.ReadAsStringAsync();
        Assert.EndsWith("\n# EOF\n", open, StringComparison.Ordinal);
        var openLines = FamiliesOf(open, "B").Split('\n');
        Assert.Contains("# TYPE balancer_destination_requests counter", openLines);
        Assert.Contains("balancer_destination_requests_total{cluster=\"backends\",destination=\"B\",code=\"404\"} 1.0", openLines);
        Assert.Contains("balancer_destination_state{cluster=\"backends\",destination=\"B\"} 3.0", openLines);
        Assert.Contains($"balancer_destination_response_bytes_total{{cluster=\"backends\",destination=\"B\"}} {responseBytes}.0", openLines);
        Assert.Equal(14, openLines.Count(l => l.StartsWith("# ", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Scrape_2000Destinations_AllocatesNoMoreThan20_ThePerDestinationSeriesAllocateNothingPerDestination()
    {
        await using var lb = await BalancerFixture.StartAsync("RoundRobin", Many(2000));
        var metrics = lb.App.Services.GetRequiredService<Balancer.Telemetry.BalancerMetricsRegistry>();
        var large = AllocatedByScrape(metrics);
        Assert.Equal(2000, (await ScrapeAsync(lb)).Count(s => s.Name == "balancer_destination_state"));

        lb.WriteConfig("RoundRobin", Many(20));
        await Poll.UntilAsync(
            async () => (await ScrapeAsync(lb)).Count(s => s.Name == "balancer_destination_state") == 20,
            TimeSpan.FromSeconds(20),
            "the config of 20 destinations");
        var small = AllocatedByScrape(metrics);

        // The 1,980 destinations more cost a scrape less than a byte each: nothing per destination, the buffers are pooled.
        Assert.True(large - small < 1980, $"a scrape allocated {large} bytes at 2,000 destinations and {small} at 20");
    }

    /// <summary>The bytes one scrape into <see cref="Stream.Null"/> allocates, once the first rounds warmed up the pools.</summary>
    private static long AllocatedByScrape(Balancer.Telemetry.BalancerMetricsRegistry metrics) =>
        // Completed when returned: it ran on this thread alone, so the thread's count is the scrape's.
        Allocations.Fewest(() => Assert.True(metrics.ExportAsync(Stream.Null).IsCompletedSuccessfully), rounds: 4);

    /// <summary><paramref name="count"/> destinations over the three backends, durations per cluster (the same prometheus-net series at any size).</summary>
    private static Action<System.Text.Json.Nodes.JsonObject> Many(int count) => config =>
    {
        var cluster = HealthTestConfig.Cluster(config);
        var backends = cluster["Destinations"]!.AsObject().Select(d => (string)d.Value!["Address"]!).ToArray();
        var destinations = new System.Text.Json.Nodes.JsonObject();
        for (var i = 0; i < count; i++)
        {
            destinations[$"d{i:0000}"] = new System.Text.Json.Nodes.JsonObject { ["Address"] = backends[i % backends.Length] };
        }

        cluster["Destinations"] = destinations;
        config["Balancer"]!["Metrics"] = new System.Text.Json.Nodes.JsonObject { ["PerDestinationHistograms"] = false };
    };

    /// <summary>The HELP, TYPE and sample lines of the families the balancer writes per destination, the samples of <paramref name="destination"/> only.</summary>
    private static string FamiliesOf(string text, string destination)
    {
        string[] families =
        [
            "balancer_destination_up", "balancer_destination_active_requests", "balancer_destination_state", "balancer_destination_requests",
            "balancer_destination_request_bytes", "balancer_destination_response_bytes", "balancer_destination_grpc_calls",
        ];
        var lines = text.Split('\n').Where(line =>
        {
            var name = line.StartsWith("# ", StringComparison.Ordinal) ? line.Split(' ').ElementAtOrDefault(2) : line.Split('{')[0];
            return families.Any(f => name == f || name == f + "_total")
                && (line.StartsWith("# ", StringComparison.Ordinal) || line.Contains($"destination=\"{destination}\"", StringComparison.Ordinal));
        });
        return string.Join('\n', lines);
    }

    private static async Task<List<PrometheusText.Sample>> ScrapeAsync(BalancerFixture lb) =>
        PrometheusText.Parse(await lb.Management.GetStringAsync("/metrics"));
}
