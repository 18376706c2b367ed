using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Balancer.Configuration;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;

namespace Balancer.Tests.Configuration;

/// <summary>The preview of a config change: what it moves, from the command line and from the management API.</summary>
[Collection(FunctionalCollection.Name)]
public sealed class ConfigPreviewTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("balancer-preview-").FullName;

    public static TheoryData<string[], string[], double> Moves => new()
    {
        // Removing one of three equal destinations moves exactly its own third.
        { ["A", "B", "C"], ["A", "B"], 1 / 3.0 },
        // Adding a fourth takes a quarter, from each of the three alike.
        { ["A", "B", "C"], ["A", "B", "C", "D"], 1 / 4.0 },
        // Adding a second to one takes half.
        { ["A"], ["A", "B"], 1 / 2.0 },
        { ["A", "B", "C"], ["A", "B", "C"], 0 },
    };

    [Theory]
    [MemberData(nameof(Moves))]
    public void IpHashMoved_WithinTwoPointsOfTheExactShare(string[] before, string[] after, double exact)
    {
        var moved = ConfigPreview.IpHashMoved(before.ToDictionary(d => d, _ => 1), after.ToDictionary(d => d, _ => 1));

        Assert.InRange(moved, exact - 0.02, exact + 0.02);
    }

    [Fact]
    public void IpHashMoved_WeightOfOneOfThreeDoubled_MovesASixth()
    {
        // A's share goes from 1/3 to 1/2: the keys it gains, and only those, move.
        var moved = ConfigPreview.IpHashMoved(
            new Dictionary<string, int> { ["A"] = 1, ["B"] = 1, ["C"] = 1 },
            new Dictionary<string, int> { ["A"] = 2, ["B"] = 1, ["C"] = 1 });

        Assert.InRange(moved, 1 / 6.0 - 0.02, 1 / 6.0 + 0.02);
    }

    [Fact]
    public async Task CheckConfigAgainst_PrintsEveryChange_AndTheIpHashShare_ExitsZero_OrOneWhenInvalid()
    {
        var current = Write("current.json", Config("IpHash", ("A", 1), ("B", 1), ("C", 1)));
        var removed = Write("removed.json", Config("IpHash", ("A", 1), ("B", 1)));
        var roundRobin = Write("rr.json", ConfigWithInterval("roundrobin", "00:00:05", ("A", 3), ("B", 1), ("C", 1), ("D", 5)));
        var invalid = Write("bad.json", Config("IpHash", ("A", 0)));

        await using (var check = BalancerProcess.Start("--check-config", removed, "--against", current))
        {
            Assert.Equal(0, await check.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            Assert.Contains($"{removed}: OK", check.Output, StringComparison.Ordinal);
            Assert.Contains("destination C removed", check.Output, StringComparison.Ordinal);
            var share = double.Parse(System.Text.RegularExpressions.Regex.Match(check.Output, @"IpHash: ([0-9.]+)% of client addresses would move").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            Assert.InRange(share, 100 / 3.0 - 2, 100 / 3.0 + 2);
        }

        await using (var check = BalancerProcess.Start("--check-config", roundRobin, "--against", current))
        {
            Assert.Equal(0, await check.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            Assert.Contains("policy IpHash -> RoundRobin", check.Output, StringComparison.Ordinal);
            Assert.Contains("destination A weight 1 -> 3", check.Output, StringComparison.Ordinal);
            Assert.Contains("destination D added (weight 5, http://127.0.0.1:5004/)", check.Output, StringComparison.Ordinal);
            Assert.Contains("HealthCheck:Active:Interval: 00:00:02 -> 00:00:05", check.Output, StringComparison.Ordinal);
            Assert.Contains("RoundRobin split: A 30%, B 10%, C 10%, D 50%", check.Output, StringComparison.Ordinal);
        }

        await using (var check = BalancerProcess.Start("--check-config", invalid, "--against", current))
        {
            Assert.Equal(1, await check.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            Assert.Contains("Metadata:Weight: '0'", check.Output, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task PreviewApi_ComparesWithTheConfigInForce_AppliesNothing_RefusesInvalidWith400()
    {
        await using var lb = await BalancerFixture.StartAsync("IpHash");
        var candidate = lb.Config("IpHash", c => c["ReverseProxy"]!["Clusters"]!["backends"]!["Destinations"]!["D"] = new JsonObject { ["Address"] = "http://127.0.0.1:5004/" });

        using var response = await lb.Management.PostAsync("/api/config/preview", new StringContent(candidate.ToJsonString(), Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        var cluster = body["clusters"]![0]!;
        Assert.Contains("destination D added (weight 1, http://127.0.0.1:5004/)", cluster["changes"]!.AsArray().Select(c => (string)c!));
        Assert.InRange((double)cluster["ipHashMovedPercent"]!, 25 - 2, 25 + 2);
        // Nothing applied.
        Assert.Equal(3, (await lb.StatusAsync())["clusters"]![0]!["destinations"]!.AsArray().Count);

        using var invalid = await lb.Management.PostAsync("/api/config/preview", new StringContent("{ \"ReverseProxy\": ", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
        Assert.Contains("not valid JSON", (string)JsonNode.Parse(await invalid.Content.ReadAsStringAsync())!["errors"]![0]!, StringComparison.Ordinal);

        using var get = await lb.Management.GetAsync("/api/config/preview");
        Assert.Equal(HttpStatusCode.MethodNotAllowed, get.StatusCode);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string Write(string name, string text)
    {
        var path = Path.Combine(_directory, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static string Config(string policy, params (string Id, int Weight)[] destinations) => ConfigWithInterval(policy, "00:00:02", destinations);

    private static string ConfigWithInterval(string policy, string health, params (string Id, int Weight)[] destinations)
    {
        var list = new JsonObject();
        foreach (var (id, weight) in destinations)
        {
            list[id] = new JsonObject
            {
                ["Address"] = $"http://127.0.0.1:{5000 + id[0] - 'A' + 1}/",
                ["Metadata"] = new JsonObject { ["Weight"] = weight.ToString(System.Globalization.CultureInfo.InvariantCulture) },
            };
        }

        return new JsonObject
        {
            ["ReverseProxy"] = new JsonObject
            {
                ["Routes"] = new JsonObject { ["all"] = new JsonObject { ["ClusterId"] = "c", ["Match"] = new JsonObject { ["Path"] = "{**all}" } } },
                ["Clusters"] = new JsonObject
                {
                    ["c"] = new JsonObject
                    {
                        ["LoadBalancingPolicy"] = policy,
                        ["HealthCheck"] = new JsonObject { ["Active"] = new JsonObject { ["Enabled"] = true, ["Interval"] = health } },
                        ["Destinations"] = list,
                    },
                },
            },
        }.ToJsonString();
    }
}
