using System.Globalization;
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

    /// <summary>The value of one series in the management <c>/metrics</c>, or null when it is not exposed.</summary>
    public static async Task<double?> MetricAsync(BalancerFixture lb, string series)
    {
        var text = await lb.Management.GetStringAsync("/metrics");
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith(series + " ", StringComparison.Ordinal))
            {
                return double.Parse(line[(series.Length + 1)..], CultureInfo.InvariantCulture);
            }
        }

        return null;
    }

    /// <summary>Sum of every series starting with <paramref name="prefix"/> (e.g. all reasons of a counter).</summary>
    public static async Task<double> SumAsync(BalancerFixture lb, string prefix)
    {
        var text = await lb.Management.GetStringAsync("/metrics");
        double sum = 0;
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith(prefix, StringComparison.Ordinal))
            {
                sum += double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        return sum;
    }
}
