using System.Text.Json.Nodes;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;

namespace Balancer.Tests.Configuration;

/// <summary>
/// A config file mounted from a Kubernetes ConfigMap: the file is a link through <c>..data</c>, and an edit
/// arrives as a new directory that <c>..data</c> is atomically renamed to point at. The balancer reloads it.
/// </summary>
[Collection(FunctionalCollection.Name)]
public sealed class ConfigMapReloadTests : IAsyncLifetime
{
    private readonly string _mount = Directory.CreateTempSubdirectory("configmap-").FullName;
    private BackendHost _backend = null!;

    public async Task InitializeAsync() => _backend = await BackendHost.StartAsync("A");

    public async Task DisposeAsync()
    {
        await _backend.DisposeAsync();
        Directory.Delete(_mount, recursive: true);
    }

    [Fact]
    public async Task ConfigMapSymlinkSwap_NewPolicyInForce_OldVersionRemoved()
    {
        var config = ProcessConfig.For([_backend]);
        Publish("..2026_01_01_00_00_00.1", config);
        File.CreateSymbolicLink(Path.Combine(_mount, "..data"), "..2026_01_01_00_00_00.1");
        File.CreateSymbolicLink(Path.Combine(_mount, "balancer.json"), "..data/balancer.json");
        await using var balancer = BalancerProcess.Start("--config", Path.Combine(_mount, "balancer.json"));
        var (_, management) = await balancer.ListenersAsync(TimeSpan.FromSeconds(60));
        using var client = new HttpClient { BaseAddress = management };
        Assert.Equal("RoundRobin", await PolicyAsync(client));

        // What the kubelet does: write the new version beside the old, swap ..data in one rename, remove the old.
        config["ReverseProxy"]!["Clusters"]!["backends"]!["LoadBalancingPolicy"] = "IpHash";
        Publish("..2026_01_01_00_01_00.2", config);
        File.CreateSymbolicLink(Path.Combine(_mount, "..data_tmp"), "..2026_01_01_00_01_00.2");
        // rename(2) of the link itself, as the kubelet does; .NET's File.Move follows a link to a directory.
        var renamed = Deployment.Repo.Run("mv", ["--no-target-directory", Path.Combine(_mount, "..data_tmp"), Path.Combine(_mount, "..data")]);
        Assert.True(renamed.ExitCode == 0, renamed.ToString());
        Directory.Delete(Path.Combine(_mount, "..2026_01_01_00_00_00.1"), recursive: true);

        await Poll.UntilAsync(async () => await PolicyAsync(client) == "IpHash", TimeSpan.FromSeconds(20), $"IpHash after the ..data swap; output:{Environment.NewLine}{balancer.Output}");
    }

    private void Publish(string version, JsonObject config)
    {
        Directory.CreateDirectory(Path.Combine(_mount, version));
        File.WriteAllText(Path.Combine(_mount, version, "balancer.json"), config.ToJsonString());
    }

    private static async Task<string?> PolicyAsync(HttpClient client) =>
        (string?)JsonNode.Parse(await client.GetStringAsync("/status"))!["clusters"]![0]!["policy"];
}
