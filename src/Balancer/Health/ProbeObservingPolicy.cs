using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Health;

/// <summary>
/// Wraps each active health policy to show the tracker the raw probe results (the policy only reports the
/// health it derives, and with a threshold above 1 a failed probe can leave it unchanged), and to drop the
/// results of probes skipped for maintenance.
/// </summary>
internal sealed class ProbeObservingPolicy(IActiveHealthCheckPolicy inner, DestinationHealthTracker tracker) : IActiveHealthCheckPolicy
{
    public string Name => inner.Name;

    public void ProbingCompleted(ClusterState cluster, IReadOnlyList<DestinationProbingResult> probingResults)
    {
        // Probes of destinations in maintenance were never sent; their health stays as it was.
        if (probingResults.Any(r => Resilience.ProbeRequests.IsSkipped(r.Response?.RequestMessage)))
        {
            probingResults = [.. probingResults.Where(r => !Resilience.ProbeRequests.IsSkipped(r.Response?.RequestMessage))];
        }

        tracker.ProbesCompleted(cluster, probingResults);
        inner.ProbingCompleted(cluster, probingResults);
    }
}
