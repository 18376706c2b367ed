using System.Globalization;
using System.Text.Json.Nodes;
using Balancer.Tests.Health;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;

namespace Balancer.Tests.Configuration;

/// <summary>
/// A config file of 10,000 destinations (several MB) replaced while requests flow: every weight changes, one
/// destination leaves and one arrives. Active probes run all along, so the probes of thousands of destinations
/// sharing three backends are part of what must not fail a request.
/// </summary>
[Collection(IntegrationCollection.Name)]
public sealed class LargeReloadTests
{
    private const int Size = 10_000;

    [Fact]
    public async Task TenThousandDestinations_ReloadUnderTraffic_AppliesAndFailsNoRequest()
    {
        await using var lb = await BalancerFixture.StartAsync("RoundRobin", config => Destinations(config, seed: 1, first: 0));
        using var traffic = new SteadyTraffic(lb.Client, clients: 4);
        await Poll.UntilAsync(() => Task.FromResult(traffic.Succeeded >= 100), TimeSpan.FromSeconds(30), "traffic through 10,000 destinations");

        // Seed 2 draws other weights; d00000 leaves and d10000 arrives.
        var next = lb.Config("RoundRobin", config => Destinations(config, seed: 2, first: 1));
        var expected = (string)next["ReverseProxy"]!["Clusters"]!["backends"]!["Destinations"]!["d09999"]!["Metadata"]!["Weight"]!;
        var before = traffic.Succeeded;
        lb.WriteConfig(next);
        Assert.InRange(new FileInfo(lb.ConfigPath).Length, 1_000_000, long.MaxValue);

        await Poll.UntilAsync(
            async () =>
            {
                var status = await StatusAsync(lb, "?name=d09999");
                return status["lastReload"]?["result"]?.GetValue<string>() == "success"
                    && (int?)status["clusters"]![0]!["destinations"]![0]!["weight"] == int.Parse(expected, CultureInfo.InvariantCulture);
            },
            TimeSpan.FromSeconds(60),
            $"d09999's new weight {expected} in /status");
        var arrived = (await StatusAsync(lb, "?name=d10000"))["clusters"]![0]!;
        var left = (await StatusAsync(lb, "?name=d00000"))["clusters"]![0]!;
        await Poll.UntilAsync(() => Task.FromResult(traffic.Succeeded >= before + 100), TimeSpan.FromSeconds(30), "traffic after the reload");
        var result = await traffic.StopAsync();

        Assert.Equal(1, arrived["matching"]!.GetValue<int>());
        Assert.Equal(0, left["matching"]!.GetValue<int>());
        Assert.Equal(Size, (await StatusAsync(lb, "?limit=1"))["clusters"]![0]!["matching"]!.GetValue<int>());
        Assert.True(result.Failed == 0, $"{result.Failed} of {result.Succeeded + result.Failed} failed: {string.Join("; ", result.Failures.Distinct().Take(5))}");
    }

    /// <summary>d{first} to d{first + 9,999} over the three backends in turn, weights 1-1000 from <paramref name="seed"/>, probed every 2 s.</summary>
    private static void Destinations(JsonObject config, int seed, int first)
    {
        HealthTestConfig.ActiveAndPassive()(config);
        var cluster = HealthTestConfig.Cluster(config);
        cluster["HealthCheck"]!["Active"]!["Interval"] = "00:00:02";
        var backends = cluster["Destinations"]!.AsObject().Select(d => (string)d.Value!["Address"]!).ToArray();
        var random = new Random(seed);
        var destinations = new JsonObject();
        for (var i = first; i < first + Size; i++)
        {
            destinations[$"d{i:00000}"] = new JsonObject
            {
                ["Address"] = backends[i % backends.Length],
                ["Metadata"] = new JsonObject { ["Weight"] = random.Next(1, 1001).ToString(CultureInfo.InvariantCulture) },
            };
        }

        cluster["Destinations"] = destinations;
    }

    private static async Task<JsonNode> StatusAsync(BalancerFixture lb, string query) =>
        JsonNode.Parse(await lb.Management.GetStringAsync("/status" + query))!;
}
