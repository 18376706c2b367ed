using Balancer.Hosting;
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

    /// <summary>The policy wrapped, for tests to tell whose it is.</summary>
    internal IActiveHealthCheckPolicy Inner => inner;

    public void ProbingCompleted(ClusterState cluster, IReadOnlyList<DestinationProbingResult> probingResults)
    {
        probingResults = WithoutUnsent(probingResults);
        tracker.ProbesCompleted(cluster, probingResults);
        inner.ProbingCompleted(cluster, probingResults);
    }

    /// <summary>
    /// Probes of destinations in maintenance were never sent, and a probe the balancer could not send (no
    /// descriptor left for its socket) says nothing about the destination: both are left out, as if they had
    /// not run, and the destination keeps the health it had.
    /// </summary>
    private static IReadOnlyList<DestinationProbingResult> WithoutUnsent(IReadOnlyList<DestinationProbingResult> results)
    {
        for (var i = 0; i < results.Count; i++)
        {
            if (Unsent(results[i]))
            {
                return [.. results.Where(r => !Unsent(r))];
            }
        }

        return results;
    }

    private static bool Unsent(DestinationProbingResult result) =>
        ProbeMarks.IsSkipped(result.Response?.RequestMessage) || LocalSocketErrors.IsLocal(result.Exception);
}
