using Balancer.Configuration;
using Balancer.LoadBalancing;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace Balancer.Tests.LoadBalancing;

internal static class Destinations
{
    public static DestinationState[] Make(params (string Id, int Weight)[] destinations) =>
        [.. destinations.Select(d => new DestinationState(d.Id, new DestinationModel(new DestinationConfig
        {
            Address = $"http://127.0.0.1/{d.Id}",
            Metadata = new Dictionary<string, string> { ["Weight"] = d.Weight.ToString(System.Globalization.CultureInfo.InvariantCulture) },
        })))];

    /// <summary>
    /// A cluster whose available destinations are <paramref name="available"/>, as YARP holds them after a health
    /// or config change: the policies cache what they derive from this list, and only from this list.
    /// </summary>
    public static ClusterState Cluster(IReadOnlyList<DestinationState> available)
    {
        var cluster = new ClusterState("c");
        Reconfigured(cluster, available);
        return cluster;
    }

    /// <summary>
    /// What YARP does when health changes: a new available list for the cluster, beside the same list of all its
    /// destinations (YARP replaces that one only when destinations are added, removed or reconfigured).
    /// </summary>
    public static void Available(ClusterState cluster, IReadOnlyList<DestinationState> available) =>
        cluster.DestinationsState = new ClusterDestinationsState(
            cluster.DestinationsState?.AllDestinations is { Count: > 0 } all ? all : available, available);

    /// <summary>What YARP does after a reload that touched the cluster's destinations: a new list of all of them, and of the available ones.</summary>
    public static void Reconfigured(ClusterState cluster, IReadOnlyList<DestinationState> all) =>
        cluster.DestinationsState = new ClusterDestinationsState(all, all);

    /// <summary>One of the balancer's policies by name, with its per-cluster states; file weights unless given, default options.</summary>
    public static (ILoadBalancingPolicy Policy, ClusterPolicyState.Table Clusters) Policy(string name, EffectiveWeights? weights = null)
    {
        weights ??= EffectiveWeights.FileOnly();
        switch (name)
        {
            case "RoundRobin":
                var roundRobin = new RoundRobinPolicy(weights);
                return (roundRobin, roundRobin.Clusters);
            case "LeastConnections":
                var leastConnections = new LeastConnectionsPolicy(weights);
                return (leastConnections, leastConnections.Clusters);
            default:
                var options = new ServiceCollection().Configure<BalancerOptions>(_ => { }).BuildServiceProvider().GetRequiredService<IOptionsMonitor<BalancerOptions>>();
                var ipHash = new IpHashPolicy(new ClientIpResolver(options), weights);
                return (ipHash, ipHash.Clusters);
        }
    }

    /// <summary><paramref name="count"/> destinations with weights 1-1000 drawn from <paramref name="seed"/>, ids unique to the seed.</summary>
    public static DestinationState[] Many(int count, int seed)
    {
        var random = new Random(seed);
        return Make([.. Enumerable.Range(0, count).Select(i => ($"d{seed}-{i}", random.Next(1, 1001)))]);
    }

    public static int Weight(DestinationState destination) => DestinationWeight.Of(destination.Model.Config);

    /// <summary>Client IPv4 addresses, as numbers, drawn from <paramref name="seed"/>.</summary>
    public static uint[] Clients(int count, int seed)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, count).Select(_ => (uint)random.Next())];
    }

    /// <summary>A request from <paramref name="client"/>.</summary>
    public static Microsoft.AspNetCore.Http.DefaultHttpContext Context(uint client) =>
        new() { Connection = { RemoteIpAddress = new System.Net.IPAddress(client) } };

    public static Dictionary<string, int> Count(int picks, Func<DestinationState> pick)
    {
        var counts = new Dictionary<string, int>();
        for (var i = 0; i < picks; i++)
        {
            var id = pick().DestinationId;
            counts[id] = counts.GetValueOrDefault(id) + 1;
        }

        return counts;
    }
}
