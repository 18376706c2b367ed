using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Balancer.Tests.Health;
using Balancer.Tests.Infrastructure;

namespace Balancer.Tests.Management;

/// <summary>
/// A cluster of 1,000 destinations (d0000 to d0999) behind the three test backends, as service discovery
/// produces them: the ten whose number ends in 07 (d0007, d0107, ..., d0907) point at a port nothing listens
/// on, so active probes mark exactly those Down.
/// </summary>
internal static class LargeCluster
{
    public const int Size = 1000;

    public static readonly string[] DeadIds = [.. Enumerable.Range(0, 10).Select(i => $"d{(i * 100) + 7:0000}")];

    public static async Task<BalancerFixture> StartAsync()
    {
        var dead = $"http://127.0.0.1:{ClosedPort()}/";
        return await BalancerFixture.StartAsync("RoundRobin", config =>
        {
            HealthTestConfig.ActiveAndPassive()(config);
            var cluster = HealthTestConfig.Cluster(config);
            var backends = cluster["Destinations"]!.AsObject().Select(d => (string)d.Value!["Address"]!).ToArray();
            var destinations = new JsonObject();
            for (var i = 0; i < Size; i++)
            {
                var id = $"d{i:0000}";
                destinations[id] = new JsonObject { ["Address"] = DeadIds.Contains(id) ? dead : backends[i % backends.Length] };
            }

            cluster["Destinations"] = destinations;
        });
    }

    /// <summary>Polls /status until the ten dead destinations are Down and all the others Up.</summary>
    public static Task WaitForDeadDownAsync(BalancerFixture lb) => Poll.UntilAsync(
        async () =>
        {
            var destinations = (await lb.StatusAsync())["clusters"]![0]!["destinations"]!.AsArray();
            return destinations.Where(d => (string?)d!["health"] == "Down").Select(d => (string)d!["id"]!).SequenceEqual(DeadIds)
                && destinations.Count(d => (string?)d!["health"] == "Up") == Size - DeadIds.Length;
        },
        TimeSpan.FromSeconds(30),
        "the ten dead destinations Down, the others Up");

    /// <summary>A loopback port that was free a moment ago and is closed now: connections to it are refused.</summary>
    private static int ClosedPort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }
}
