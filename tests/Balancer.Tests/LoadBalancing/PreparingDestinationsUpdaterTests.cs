using System.Globalization;
using Balancer.LoadBalancing;
using Balancer.Runtime;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Tests.LoadBalancing;

[Trait("Category", "Unit")]
public sealed class PreparingDestinationsUpdaterTests
{
    [Fact]
    public void AddBalancerPolicies_WrapsYarpsUpdater()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddReverseProxy();
        services.AddBalancerPolicies();
        using var provider = services.BuildServiceProvider();

        Assert.IsType<PreparingDestinationsUpdater>(provider.GetRequiredService<IClusterDestinationsUpdater>());
    }

    [Theory]
    [InlineData("RoundRobin")]
    [InlineData("LeastConnections")]
    [InlineData("IpHash")]
    public void ReloadChangingEveryWeight_10000Destinations_SnapshotBuiltByTheUpdate_TheNextRequestBuildsAndAllocatesNothing(string name)
    {
        var (policy, clusters) = Destinations.Policy(name);
        clusters.RunBuild = build => build();
        using var services = new ServiceCollection().AddSingleton(policy).BuildServiceProvider();
        var updater = new PreparingDestinationsUpdater(new AllAvailable(), new PolicySnapshots(services));
        var cluster = new ClusterState("c", new ClusterModel(new ClusterConfig { ClusterId = "c", LoadBalancingPolicy = name }, new HttpMessageInvoker(new SocketsHttpHandler())));
        var random = new Random(61);
        for (var i = 0; i < 10_000; i++)
        {
            var id = $"d{i:00000}";
            cluster.Destinations[id] = new DestinationState(id, Model(random.Next(1, 1001)));
        }

        updater.UpdateAllDestinations(cluster);
        Assert.Equal(1, clusters.Builds(cluster));
        var context = new DefaultHttpContext { Connection = { RemoteIpAddress = System.Net.IPAddress.Parse("10.1.2.3") } };
        policy.PickDestination(context, cluster, cluster.DestinationsState.AvailableDestinations);
        Assert.Equal(1, clusters.Builds(cluster));

        // As YARP applies a reload that drew every weight again: a new model for each kept state, then its new lists.
        var weights = new Dictionary<string, int>();
        foreach (var destination in cluster.Destinations.Values)
        {
            weights[destination.DestinationId] = random.Next(1, 1001);
            typeof(DestinationState).GetProperty(nameof(DestinationState.Model))!.SetValue(destination, Model(weights[destination.DestinationId]));
        }

        updater.UpdateAllDestinations(cluster);

        Assert.Equal(2, clusters.Builds(cluster));
        var prepared = clusters.CachedSet(cluster)!;
        if (name == "IpHash")
        {
            // The weights are the table's, built by the update too (builds run at once here): one table per config.
            var table = clusters.CachedTable(cluster)!;
            Assert.Equal(2, clusters.TableBuilds(cluster));
            Assert.Equal(table.Destinations.Select(d => weights[d.DestinationId]), table.Weights);
        }
        else
        {
            Assert.Equal(prepared.Destinations.ToArray().Select(d => weights[d.DestinationId] * SlowStart.ScaledWeight(1, SlowStart.Steps)), prepared.Weights.ToArray());
        }
        // The least of three rounds: a collection started elsewhere can be counted on this thread once.
        var bytes = long.MaxValue;
        for (var round = 0; round < 3; round++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            policy.PickDestination(context, cluster, cluster.DestinationsState.AvailableDestinations);
            bytes = Math.Min(bytes, GC.GetAllocatedBytesForCurrentThread() - before);
        }

        Assert.Equal(0, bytes);
        Assert.Equal(2, clusters.Builds(cluster));
        Assert.Same(prepared, clusters.CachedSet(cluster));
    }

    private static DestinationModel Model(int weight) => new(new DestinationConfig
    {
        Address = "http://127.0.0.1/",
        Metadata = new Dictionary<string, string> { ["Weight"] = weight.ToString(CultureInfo.InvariantCulture) },
    });

    /// <summary>YARP's updater as far as a policy sees it: a new list of every destination, all available.</summary>
    private sealed class AllAvailable : IClusterDestinationsUpdater
    {
        public void UpdateAllDestinations(ClusterState cluster)
        {
            DestinationState[] all = [.. cluster.Destinations.Values];
            cluster.DestinationsState = new ClusterDestinationsState(all, all);
        }

        public void UpdateAvailableDestinations(ClusterState cluster) => UpdateAllDestinations(cluster);
    }
}
