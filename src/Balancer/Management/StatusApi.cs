using Balancer.Configuration;
using Balancer.LoadBalancing;
using Yarp.ReverseProxy;

namespace Balancer.Management;

/// <summary>Builds the <c>GET /status</c> document from YARP's live state.</summary>
internal sealed class StatusApi(IProxyStateLookup proxyState, ConfigReloadTracker reloads)
{
    public StatusDocument Snapshot()
    {
        var clusters = new List<ClusterStatus>();
        foreach (var cluster in proxyState.GetClusters())
        {
            var config = cluster.Model.Config;
            var destinations = new List<DestinationStatus>();
            foreach (var destination in cluster.Destinations.Values)
            {
                destinations.Add(new DestinationStatus(
                    destination.DestinationId,
                    destination.Model.Config.Address,
                    DestinationHealthView.Of(destination),
                    DestinationWeight.Of(destination.Model.Config),
                    destination.ConcurrentRequestCount));
            }

            destinations.Sort(static (a, b) => string.CompareOrdinal(a.Id, b.Id));
            clusters.Add(new ClusterStatus(cluster.ClusterId, config.LoadBalancingPolicy ?? PolicyNames.Default, destinations));
        }

        clusters.Sort(static (a, b) => string.CompareOrdinal(a.Id, b.Id));
        var last = reloads.Last;
        return new StatusDocument(clusters, last is null ? null : new ReloadStatus(last.Time, last.Success ? "success" : "failure", last.Error));
    }
}

public sealed record StatusDocument(IReadOnlyList<ClusterStatus> Clusters, ReloadStatus? LastReload);

public sealed record ClusterStatus(string Id, string Policy, IReadOnlyList<DestinationStatus> Destinations);

public sealed record DestinationStatus(string Id, string Address, string Health, int Weight, int InFlight);

public sealed record ReloadStatus(DateTimeOffset Time, string Result, string? Error);
