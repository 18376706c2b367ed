using System.Text.Json;
using System.Text.Json.Nodes;
using Balancer.Tests.Infrastructure;

namespace Balancer.Tests.Deployment;

/// <summary>
/// The provisioned dashboards, checked as Grafana will load them from the file provider: no import step,
/// the datasource by its fixed uid, a layout that fits Grafana's 24-column grid. No Grafana runs here;
/// that every query works is checked against a real Prometheus in <c>DashboardLiveTests</c>.
/// </summary>
public sealed class GrafanaDashboardTests
{
    private static readonly string[] ContractSeries =
    [
        "balancer_destination_up",
        "balancer_destination_requests_total",
        "balancer_destination_request_duration_seconds_bucket",
        "balancer_destination_active_requests",
        "balancer_destination_request_bytes_total",
        "balancer_destination_response_bytes_total",
        "balancer_cluster_policy_info",
        "balancer_config_reloads_total",
        "sample_backend_requests_total",
    ];

    [Fact]
    public void Dashboards_AreValidJson_WithFixedUid_Grafana11SchemaVersion_AndNoImportInputs()
    {
        var files = GrafanaDashboards.Files();

        Assert.NotEmpty(files);
        var uids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (file, text) in files)
        {
            var dashboard = JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { AllowTrailingCommas = false })!.AsObject();
            var uid = (string?)dashboard["uid"];
            Assert.Matches("^[a-zA-Z0-9_-]{1,40}$", uid);
            Assert.True(uids.Add(uid!), $"{file}: uid {uid} is used by another dashboard");
            Assert.False(string.IsNullOrWhiteSpace((string?)dashboard["title"]), $"{file}: no title");
            Assert.InRange((int)dashboard["schemaVersion"]!, 39, 41);
            Assert.False(dashboard.ContainsKey("__inputs"), $"{file}: __inputs is for the import dialog, which provisioning never shows");
            Assert.DoesNotContain("${DS_", text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Dashboards_PanelIdsAreUnique_AndPanelsFitThe24ColumnGridWithoutOverlapping()
    {
        foreach (var dashboard in GrafanaDashboards.All())
        {
            var panels = GrafanaDashboards.Panels(dashboard).ToList();
            var ids = panels.Select(p => (int)p["id"]!).ToList();
            Assert.Equal(ids.Count, ids.Distinct().Count());

            var boxes = panels.Select(p => p["gridPos"]!).Select(g => (X: (int)g["x"]!, Y: (int)g["y"]!, W: (int)g["w"]!, H: (int)g["h"]!)).ToList();
            for (var i = 0; i < boxes.Count; i++)
            {
                var b = boxes[i];
                Assert.True(b.X >= 0 && b.W >= 1 && b.X + b.W <= 24 && b.Y >= 0 && b.H >= 1, $"panel {ids[i]}: gridPos {b} leaves the 24 columns");
                for (var j = 0; j < i; j++)
                {
                    var o = boxes[j];
                    var overlap = b.X < o.X + o.W && o.X < b.X + b.W && b.Y < o.Y + o.H && o.Y < b.Y + b.H;
                    Assert.False(overlap, $"panels {ids[j]} and {ids[i]} overlap");
                }
            }
        }
    }

    [Fact]
    public void Dashboards_EveryDatasource_IsTheProvisionedPrometheus_ByUid()
    {
        var uid = GrafanaDashboards.ProvisionedPrometheusUid();

        foreach (var dashboard in GrafanaDashboards.All())
        {
            var references = DatasourceReferences(dashboard).ToList();
            Assert.NotEmpty(references);
            Assert.All(references, r =>
            {
                var reference = Assert.IsType<JsonObject>(r);
                Assert.Equal(uid, (string?)reference["uid"]);
                Assert.Equal("prometheus", (string?)reference["type"]);
            });
            // No panel or target may fall back to "the default datasource" by leaving it out.
            Assert.All(GrafanaDashboards.Panels(dashboard), p => Assert.NotNull(p["datasource"]));
            Assert.All(GrafanaDashboards.Panels(dashboard).SelectMany(p => p["targets"]?.AsArray() ?? []), t => Assert.NotNull(t!["datasource"]));
        }
    }

    [Fact]
    public void Dashboard_HasAClusterVariable_FromLabelValues_UsedByThePanels()
    {
        var dashboard = Assert.Single(GrafanaDashboards.All());

        var variable = Assert.Single(dashboard["templating"]!["list"]!.AsArray(), v => (string?)v!["name"] == "cluster")!;
        Assert.Equal("query", (string?)variable["type"]);
        var query = variable["query"] is JsonObject q ? (string?)q["query"] : (string?)variable["query"];
        Assert.Matches(@"^label_values\(\s*balancer_[a-z_]+\s*,\s*cluster\s*\)$", query);
        Assert.Contains(GrafanaDashboards.Queries(dashboard), q => q.Expr.Contains("$cluster", StringComparison.Ordinal));
    }

    [Fact]
    public void Dashboard_UpDownStat_MapsOneToGreenUp_AndZeroToRedDown_OneSeriesPerDestination()
    {
        var dashboard = Assert.Single(GrafanaDashboards.All());

        var query = Assert.Single(GrafanaDashboards.Queries(dashboard), q => q.Expr.Contains("balancer_destination_up", StringComparison.Ordinal));
        Assert.Equal("stat", (string?)query.Panel["type"]);
        Assert.Contains("destination", query.LegendLabels);
        var mappings = query.Panel["fieldConfig"]!["defaults"]!["mappings"]!.AsArray();
        var values = Assert.Single(mappings, m => (string?)m!["type"] == "value")!["options"]!;
        Assert.Equal("UP", (string?)values["1"]!["text"]);
        Assert.Equal("green", (string?)values["1"]!["color"]);
        Assert.Equal("DOWN", (string?)values["0"]!["text"]);
        Assert.Equal("red", (string?)values["0"]!["color"]);
        Assert.Equal("background", (string?)query.Panel["options"]!["colorMode"]);
    }

    [Fact]
    public void Dashboard_QueriesEveryContractSeries_AndTheBackendsOwnCount()
    {
        var dashboard = Assert.Single(GrafanaDashboards.All());
        var expressions = GrafanaDashboards.Queries(dashboard).Select(q => q.Expr).ToList();

        Assert.All(ContractSeries, series => Assert.Contains(expressions, e => e.Contains(series, StringComparison.Ordinal)));
        Assert.Contains(expressions, e => e.Contains("histogram_quantile(0.5,", StringComparison.Ordinal));
        Assert.Contains(expressions, e => e.Contains("histogram_quantile(0.95,", StringComparison.Ordinal));
        Assert.Contains(expressions, e => e.Contains("histogram_quantile(0.99,", StringComparison.Ordinal));
    }

    [Fact]
    public void Dashboard_ShowsRequestsByProtocol_GrpcCallsByStatus_AndGrpcErrorsBesideHttpErrors()
    {
        var dashboard = Assert.Single(GrafanaDashboards.All());
        var queries = GrafanaDashboards.Queries(dashboard).ToList();

        var protocol = Assert.Single(queries, q => q.Expr.Contains("balancer_requests_by_protocol_total", StringComparison.Ordinal));
        Assert.Contains("protocol", protocol.LegendLabels);
        var grpc = Assert.Single(queries, q => q.Expr.Contains("balancer_destination_grpc_calls_total", StringComparison.Ordinal) && !q.Expr.Contains("!=", StringComparison.Ordinal));
        Assert.Equal(["destination", "grpc_status"], grpc.LegendLabels);
        // A gRPC error is an HTTP 200: the error panel shows it from the gRPC status, beside the HTTP classes.
        var errors = queries.Where(q => (string?)q.Panel["title"] == "Error rate by status class").ToList();
        Assert.Equal(2, errors.Count);
        Assert.Contains(errors, q => q.Expr.Contains("grpc_status!=\"OK\"", StringComparison.Ordinal) && q.LegendLabels.SequenceEqual(["grpc_status"]));
    }

    [Fact]
    public void Dashboard_ShowsEachBalancerInstance_ItsRequestsPerSecond_AndWhetherItServes()
    {
        var dashboard = Assert.Single(GrafanaDashboards.All());
        var queries = GrafanaDashboards.Queries(dashboard).ToList();

        var rps = Assert.Single(queries, q => q.Expr.StartsWith("sum by (instance) (rate(balancer_destination_requests_total", StringComparison.Ordinal));
        Assert.Equal(["instance"], rps.LegendLabels);
        var serving = Assert.Single(queries, q => q.Expr.Contains("balancer_ready", StringComparison.Ordinal));
        Assert.Equal(["instance"], serving.LegendLabels);
        Assert.Equal("stat", (string?)serving.Panel["type"]);
        var values = Assert.Single(serving.Panel["fieldConfig"]!["defaults"]!["mappings"]!.AsArray(), m => (string?)m!["type"] == "value")!["options"]!;
        Assert.Equal(
            ["0 NOT READY", "1 STANDBY", "2 LEAVING", "3 SERVING"],
            values.AsObject().OrderBy(v => v.Key, StringComparer.Ordinal).Select(v => $"{v.Key} {(string?)v.Value!["text"]}"));
    }

    private static IEnumerable<JsonNode?> DatasourceReferences(JsonNode? node) => node switch
    {
        JsonObject o => o.SelectMany(p => p.Key == "datasource" ? [p.Value] : DatasourceReferences(p.Value)),
        JsonArray a => a.SelectMany(DatasourceReferences),
        _ => [],
    };
}
