using System.Text.Json.Nodes;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;

namespace Balancer.Tests.Hosting;

/// <summary>What an operator sees when the balancer starts in front of healthy backends: nothing to act on.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class StartupLogTests : IAsyncDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("balancer-startup-log-").FullName;
    private readonly List<BackendHost> _backends = [];

    [Fact]
    public async Task StartServeStop_WithAnEmptyHome_LogsNoWarning_WritesNothingThere()
    {
        // A fresh account: no key ring yet, which is when DataProtection would create one and warn.
        var home = Directory.CreateDirectory(Path.Combine(_directory, "home")).FullName;
        var config = Path.Combine(_directory, "balancer.json");
        await File.WriteAllTextAsync(config, await ConfigAsync());
        await using var balancer = BalancerProcess.Start(["--config", config], new Dictionary<string, string> { ["HOME"] = home });
        var (proxy, management) = await balancer.ListenersAsync(TimeSpan.FromSeconds(60));
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        for (var i = 0; i < 6; i++)
        {
            using var response = await client.GetAsync(proxy);
            Assert.True(response.IsSuccessStatusCode, $"{response.StatusCode}{Environment.NewLine}{balancer.Output}");
        }

        await Poll.UntilAsync(
            async () => JsonNode.Parse(await client.GetStringAsync(new Uri(management, "/status")))!["clusters"]![0]!["destinations"]!.AsArray().All(d => (string?)d!["health"] == "Up"),
            TimeSpan.FromSeconds(10),
            "every destination Up");
        balancer.Signal("TERM");
        Assert.Equal(0, await balancer.WaitForExitAsync(TimeSpan.FromSeconds(30)));

        Assert.Contains("Now listening on", balancer.Output, StringComparison.Ordinal);
        Assert.False(balancer.Output.Contains("warn:", StringComparison.Ordinal) || balancer.Output.Contains("fail:", StringComparison.Ordinal), balancer.Output);
        Assert.Empty(Directory.EnumerateFileSystemEntries(home));
    }

    [Fact]
    public async Task Start_OnOneCpu_ReportsWorkstationGcWithBackgroundCollections()
    {
        // One CPU is what the benchmarks give the proxy (taskset), and there the runtime picks workstation GC
        // whatever the build asks for: the build's background-GC setting is what bounds its budgets, and so its
        // memory under load. The line is the runtime's own report, so this checks the setting reached the
        // process (runtimeconfig.json, or the Native AOT executable with BALANCER_EXECUTABLE).
        var config = Path.Combine(_directory, "balancer.json");
        await File.WriteAllTextAsync(config, await ConfigAsync());
        await using var balancer = BalancerProcess.Start(["--config", config], new Dictionary<string, string> { ["DOTNET_PROCESSOR_COUNT"] = "1" });
        await balancer.ListenersAsync(TimeSpan.FromSeconds(60));

        Assert.Contains("Garbage collector: workstation (1 heaps at most), background collections on, gen0 budget at most ", balancer.Output, StringComparison.Ordinal);
        balancer.Signal("TERM");
        Assert.Equal(0, await balancer.WaitForExitAsync(TimeSpan.FromSeconds(30)));
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var backend in _backends)
        {
            await backend.DisposeAsync();
        }

        Directory.Delete(_directory, recursive: true);
    }

    private async Task<string> ConfigAsync()
    {
        foreach (var name in new[] { "A", "B", "C" })
        {
            _backends.Add(await BackendHost.StartAsync(name));
        }

        // A generous probe timeout: this test is about what is logged, not how fast a loaded machine answers.
        var health = new JsonObject
        {
            ["Active"] = new JsonObject { ["Enabled"] = true, ["Interval"] = "00:00:01", ["Timeout"] = "00:00:10", ["Policy"] = "ConsecutiveFailures", ["Path"] = "/health" },
        };
        return ProcessConfig.For(_backends, health).ToJsonString();
    }
}
