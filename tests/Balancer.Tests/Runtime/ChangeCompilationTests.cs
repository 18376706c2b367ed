using System.Globalization;
using System.Text.Json.Nodes;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;

namespace Balancer.Tests.Runtime;

/// <summary>
/// What the JIT compiles while a large cluster changes: the loops over every destination that run once per change (the
/// available list, the round-robin order) are compiled once, optimized, and never again on the thread making a change.
/// Tiered, each new unoptimized version of one of them compiled an optimized copy of itself in the middle of a change
/// (on-stack replacement): on a proxy pinned to one CPU, 16 ms of JIT at 10,000 destinations that held every request.
/// Read from the runtime's own summary of every method it compiled, with its tier (<c>DOTNET_JitDisasmSummary</c>).
/// </summary>
[Collection(IntegrationCollection.Name)]
public sealed class ChangeCompilationTests : IDisposable
{
    private const int Count = 2000;
    private const int Changes = 40;

    /// <summary>The loops over every destination a change runs for the available list, whatever the policy.</summary>
    private static readonly string[] AvailableList =
    [
        "Balancer.Runtime.RuntimeAvailableDestinations+Known:Recompute(",
        "Balancer.Runtime.RuntimeAvailableDestinations+Known:Update(",
        "Balancer.Runtime.RuntimeAvailableDestinations+Known:Build(",
        "Balancer.Runtime.RuntimeAvailableDestinations+Known:IndexOf(",
        "Balancer.LoadBalancing.EffectiveWeights:Fill(",
    ];

    /// <summary>Those each policy runs for its snapshot of the new list.</summary>
    private static readonly Dictionary<string, string[]> PolicyLoops = new()
    {
        ["RoundRobin"] = ["Balancer.LoadBalancing.DestinationSet:Fill(", "Balancer.LoadBalancing.EarliestDeadlineFirst:.ctor(int[],int,int[],int[],bool,int)", "Balancer.LoadBalancing.EarliestDeadlineFirst:HeaviestFirst("],
        ["LeastConnections"] = ["Balancer.LoadBalancing.DestinationSet:Fill("],
        ["IpHash"] = ["Balancer.LoadBalancing.ConfiguredTable:For(", "Balancer.LoadBalancing.ConfiguredTable:AvailabilityOf(", "Balancer.LoadBalancing.MaglevTable:.ctor(System.ReadOnlySpan`1[ulong],System.ReadOnlySpan`1[int],int)"],
    };

    private readonly string _directory = Directory.CreateTempSubdirectory("balancer-change-jit-").FullName;

    [JitBuildTheory]
    [InlineData("RoundRobin")]
    [InlineData("LeastConnections")]
    [InlineData("IpHash")]
    public async Task DrainsAndEnables_OfTwoThousandDestinations_CompileTheChangePathOnceOptimized_NothingOnTheStack(string policy)
    {
        var config = Path.Combine(_directory, "balancer.json");
        var summary = Path.Combine(_directory, "jit.txt");
        await File.WriteAllTextAsync(config, Config(policy));
        await using var balancer = BalancerProcess.Start(["--config", config], new Dictionary<string, string>
        {
            ["DOTNET_JitStdOutFile"] = summary,
            ["DOTNET_JitDisasmSummary"] = "1",
        });
        var (_, management) = await balancer.ListenersAsync(TimeSpan.FromSeconds(60));
        using var client = new HttpClient { BaseAddress = management, Timeout = TimeSpan.FromSeconds(10) };
        // 40 changes of 2,000 destinations: 80,000 turns of each loop, past the point where a loop in unoptimized code is
        // compiled again on the stack.
        for (var i = 0; i < Changes; i++)
        {
            using var response = await client.PostAsync($"/api/destinations/backends/d{i / 2:0000}/{(i % 2 == 0 ? "drain" : "enable")}", null);
            Assert.True(response.IsSuccessStatusCode, $"{response.StatusCode}{Environment.NewLine}{balancer.Output}");
        }

        balancer.Signal("TERM");
        Assert.Equal(0, await balancer.WaitForExitAsync(TimeSpan.FromSeconds(30)));

        var compiled = await File.ReadAllLinesAsync(summary);
        foreach (var method in AvailableList.Concat(PolicyLoops[policy]))
        {
            var versions = compiled.Where(line => line.Contains(" JIT compiled " + method, StringComparison.Ordinal)).ToList();
            Assert.True(versions.Count == 1 && versions[0].Contains("[FullOpts,", StringComparison.Ordinal), $"{method}: {string.Join(Environment.NewLine, versions)}");
        }

        Assert.DoesNotContain(compiled, line => line.Contains("-OSR ", StringComparison.Ordinal)
            && (line.Contains(" JIT compiled Balancer.LoadBalancing.", StringComparison.Ordinal) || line.Contains(" JIT compiled Balancer.Runtime.", StringComparison.Ordinal)));
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>
    /// One cluster of <see cref="Count"/> destinations, weights 1-100 (ordered by counting, as the scale benchmark's
    /// 10,000 with weights up to 1,000 are); no probes, no requests.
    /// </summary>
    private static string Config(string policy)
    {
        var random = new Random(7);
        var destinations = new JsonObject();
        for (var i = 0; i < Count; i++)
        {
            destinations[$"d{i:0000}"] = new JsonObject
            {
                ["Address"] = "http://127.0.0.1:9/",
                ["Metadata"] = new JsonObject { ["Weight"] = random.Next(1, 101).ToString(CultureInfo.InvariantCulture) },
            };
        }

        return ProcessConfig.Of(new JsonObject { ["LoadBalancingPolicy"] = policy, ["Destinations"] = destinations }).ToJsonString();
    }
}
