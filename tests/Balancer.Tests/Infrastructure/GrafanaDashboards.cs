using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Balancer.Tests.Deployment;

namespace Balancer.Tests.Infrastructure;

/// <summary>The provisioned Grafana files of the repository, read the way Grafana reads them.</summary>
internal static partial class GrafanaDashboards
{
    public const string DashboardsDirectory = "grafana/dashboards";
    public const string DatasourcesDirectory = "grafana/provisioning/datasources";

    /// <summary>One PromQL query of one panel.</summary>
    public sealed record Query(JsonObject Panel, string Expr, string Legend)
    {
        public string Describe => $"panel {Panel["id"]} '{Panel["title"]}': {Expr}";

        /// <summary>The labels the legend names (<c>{{destination}}</c>), which every result series must carry.</summary>
        public IReadOnlyList<string> LegendLabels => [.. LegendLabel().Matches(Legend).Select(m => m.Groups[1].Value)];
    }

    public static IReadOnlyList<(string File, string Text)> Files() =>
        [.. Directory.GetFiles(Repo.PathOf(DashboardsDirectory), "*.json").Order(StringComparer.Ordinal).Select(f => (Path.GetFileName(f), File.ReadAllText(f)))];

    public static IReadOnlyList<JsonObject> All() => [.. Files().Select(f => JsonNode.Parse(f.Text)!.AsObject())];

    /// <summary>Every panel, including those nested in collapsed rows.</summary>
    public static IEnumerable<JsonObject> Panels(JsonObject dashboard)
    {
        foreach (var panel in dashboard["panels"]!.AsArray().Select(p => p!.AsObject()))
        {
            yield return panel;
            foreach (var nested in panel["panels"]?.AsArray() ?? [])
            {
                yield return nested!.AsObject();
            }
        }
    }

    public static IEnumerable<Query> Queries(JsonObject dashboard) =>
        Panels(dashboard)
            .SelectMany(panel => (panel["targets"]?.AsArray() ?? []).Select(t => new Query(panel, (string)t!["expr"]!, (string?)t["legendFormat"] ?? string.Empty)));

    /// <summary>The uid of the one Prometheus datasource provisioned for the dashboards.</summary>
    public static string ProvisionedPrometheusUid()
    {
        var datasources = Directory.GetFiles(Repo.PathOf(DatasourcesDirectory), "*.y*ml")
            .SelectMany(f => Repo.Yaml(File.ReadAllText(f))["datasources"]!.AsArray())
            .Where(d => (string?)d!["type"] == "prometheus")
            .ToList();
        return (string)Assert.Single(datasources)!["uid"]!;
    }

    /// <summary>
    /// The query as Grafana sends it to Prometheus: template variables replaced, with the rate interval
    /// Grafana derives from a 1 s scrape interval (4 x scrape interval).
    /// </summary>
    public static string Substitute(string expr, string cluster)
    {
        var text = expr
            .Replace("${cluster}", cluster, StringComparison.Ordinal)
            .Replace("$cluster", cluster, StringComparison.Ordinal)
            .Replace("$__rate_interval", "4s", StringComparison.Ordinal)
            .Replace("$__interval", "1s", StringComparison.Ordinal)
            .Replace("$__range", "1m", StringComparison.Ordinal);
        // ${1} is label_replace's capture group, not a Grafana variable.
        var left = LeftoverVariable().Match(text);
        Assert.False(left.Success, $"unsubstituted variable {left.Value} in {expr}");
        return text;
    }

    [GeneratedRegex(@"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")]
    private static partial Regex LegendLabel();

    [GeneratedRegex(@"\$(?!\{\d+\})[\w{]+")]
    private static partial Regex LeftoverVariable();
}
