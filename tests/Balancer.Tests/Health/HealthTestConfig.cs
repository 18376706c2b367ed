using System.Text.Json.Nodes;
using Balancer.Tests.Infrastructure;

namespace Balancer.Tests.Health;

/// <summary>Config edits and status/metrics readers shared by the health and failover tests.</summary>
internal static class HealthTestConfig
{
    /// <summary>Active probes every second (timeout 1 s, one failure marks down), FirstFailure passive checks.</summary>
    public static Action<JsonObject> ActiveAndPassive(string reactivation = "00:00:30", Action<JsonObject>? cluster = null) => config =>
    {
        var backends = Cluster(config);
        backends["HealthCheck"] = new JsonObject
        {
            ["Active"] = new JsonObject
            {
                ["Enabled"] = true,
                ["Interval"] = "00:00:01",
                ["Timeout"] = "00:00:01",
                ["Policy"] = "ConsecutiveFailures",
                ["Path"] = "/health",
            },
            ["Passive"] = new JsonObject { ["Enabled"] = true, ["Policy"] = "FirstFailure", ["ReactivationPeriod"] = reactivation },
        };
        backends["Metadata"] = new JsonObject { ["ConsecutiveFailuresHealthPolicy.Threshold"] = "1" };
        cluster?.Invoke(backends);
    };

    public static JsonObject Cluster(JsonObject config) => config["ReverseProxy"]!["Clusters"]!["backends"]!.AsObject();

    public static async Task<string> HealthAsync(BalancerFixture lb, string destination)
    {
        var destinations = (await lb.StatusAsync())["clusters"]![0]!["destinations"]!.AsArray();
        return (string)destinations.Single(d => (string)d!["id"]! == destination)!["health"]!;
    }

    public static async Task WaitForHealthAsync(BalancerFixture lb, string destination, string health, TimeSpan timeout) =>
        await Poll.UntilAsync(async () => await HealthAsync(lb, destination) == health, timeout, $"{destination} to be {health} in /status");

    public static async Task WaitAllUpAsync(BalancerFixture lb)
    {
        foreach (var backend in lb.Backends)
        {
            await WaitForHealthAsync(lb, backend.Name, "Up", TimeSpan.FromSeconds(10));
        }
    }

    /// <summary>
    /// The value of one series in the management <c>/metrics</c> (<c>name{label="value",...}</c> with all its
    /// labels), or null when it is not exposed.
    /// </summary>
    public static async Task<double?> MetricAsync(BalancerFixture lb, string series)
    {
        var selected = (await lb.MetricsAsync()).Matching(series).ToList();
        return selected.Count == 0 ? null : selected.Single().Value;
    }

    /// <summary>Sum of every series <paramref name="selector"/> picks (e.g. all reasons of a counter: <c>name{destination="B"</c>).</summary>
    public static async Task<double> SumAsync(BalancerFixture lb, string selector) =>
        (await lb.MetricsAsync()).Matching(selector).Sum(s => s.Value);
}
