using System.Text.Json.Nodes;

namespace Balancer.Tests.Infrastructure;

/// <summary>Config files for a <see cref="BalancerProcess"/>: both listeners on free loopback ports.</summary>
internal static class ProcessConfig
{
    /// <summary>One RoundRobin cluster over <paramref name="backends"/>, with <paramref name="healthCheck"/> if given.</summary>
    public static JsonObject For(IEnumerable<BackendHost> backends, JsonObject? healthCheck = null)
    {
        var destinations = new JsonObject();
        foreach (var backend in backends)
        {
            destinations[backend.Name] = new JsonObject { ["Address"] = backend.Address.ToString() };
        }

        var cluster = new JsonObject { ["LoadBalancingPolicy"] = "RoundRobin", ["Destinations"] = destinations };
        if (healthCheck is not null)
        {
            cluster["HealthCheck"] = healthCheck;
        }

        return Of(cluster);
    }

    /// <summary>A config of one cluster, <c>backends</c>, as given, behind a route for every path.</summary>
    public static JsonObject Of(JsonObject cluster)
    {
        return new JsonObject
        {
            ["Balancer"] = new JsonObject
            {
                ["Listen"] = "http://127.0.0.1:0",
                ["Management"] = new JsonObject { ["Listen"] = "http://127.0.0.1:0" },
            },
            ["ReverseProxy"] = new JsonObject
            {
                ["Routes"] = new JsonObject { ["all"] = new JsonObject { ["ClusterId"] = "backends", ["Match"] = new JsonObject { ["Path"] = "{**catch-all}" } } },
                ["Clusters"] = new JsonObject { ["backends"] = cluster },
            },
        };
    }
}
