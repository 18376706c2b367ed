using System.Text.Json.Nodes;
using Balancer.Tests.Infrastructure;

namespace Balancer.Tests.Grpc;

/// <summary>Config edits and readers for the fixture's <c>grpc</c> cluster (<see cref="BalancerFixture"/> with gRPC backends).</summary>
internal static class GrpcTestConfig
{
    public const string Cluster = "grpc";

    /// <summary>gRPC health probes every second (one failure marks down), FirstFailure passive checks.</summary>
    public static Action<JsonObject> GrpcHealthChecks(string? service = null) => config =>
    {
        var cluster = config["ReverseProxy"]!["Clusters"]![Cluster]!.AsObject();
        cluster["HealthCheck"] = new JsonObject
        {
            ["Active"] = new JsonObject { ["Enabled"] = true, ["Interval"] = "00:00:01", ["Timeout"] = "00:00:01", ["Policy"] = "ConsecutiveFailures" },
            ["Passive"] = new JsonObject { ["Enabled"] = true, ["Policy"] = "FirstFailure", ["ReactivationPeriod"] = "00:00:30" },
        };
        var metadata = new JsonObject { ["ConsecutiveFailuresHealthPolicy.Threshold"] = "1", ["HealthCheck.Protocol"] = "Grpc" };
        if (service is not null)
        {
            metadata["HealthCheck.GrpcService"] = service;
        }

        cluster["Metadata"] = metadata;
    };

    public static async Task<string> HealthAsync(BalancerFixture lb, string destination)
    {
        var cluster = (await lb.StatusAsync())["clusters"]!.AsArray().Single(c => (string)c!["id"]! == Cluster)!;
        return (string)cluster["destinations"]!.AsArray().Single(d => (string)d!["id"]! == destination)!["health"]!;
    }

    public static Task WaitForHealthAsync(BalancerFixture lb, string destination, string health, TimeSpan timeout) =>
        Poll.UntilAsync(async () => await HealthAsync(lb, destination) == health, timeout, $"{Cluster}/{destination} to be {health} in /status");
}
