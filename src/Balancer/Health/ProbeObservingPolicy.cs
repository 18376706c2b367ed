using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Health;

/// <summary>
/// Wraps each active health policy to show the tracker the raw probe results (the policy only reports the
/// health it derives, and with a threshold above 1 a failed probe can leave it unchanged).
/// </summary>
internal sealed class ProbeObservingPolicy(IActiveHealthCheckPolicy inner, DestinationHealthTracker tracker) : IActiveHealthCheckPolicy
{
    public string Name => inner.Name;

    public void ProbingCompleted(ClusterState cluster, IReadOnlyList<DestinationProbingResult> probingResults)
    {
        tracker.ProbesCompleted(cluster, probingResults);
        inner.ProbingCompleted(cluster, probingResults);
    }
}
