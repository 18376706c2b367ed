using System.Globalization;
using Balancer.PerDestination;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Health;

/// <summary>
/// YARP's <c>ConsecutiveFailures</c> active policy, the same rule under the same name and metadata key: a successful
/// probe makes the destination Healthy and clears its count of failures; a failed one counts, and makes it Unhealthy
/// once the count reaches the cluster's <c>ConsecutiveFailuresHealthPolicy.Threshold</c> (default 2). The difference
/// is where each count lives: in the destination's slot, where YARP's kept a weak table of its own, one more dependent
/// handle per destination for every gen0 collection to scan.
/// </summary>
internal sealed class ConsecutiveFailuresPolicy(IOptions<ConsecutiveFailuresHealthPolicyOptions> options, IDestinationHealthUpdater updater, DestinationSlots slots)
    : IActiveHealthCheckPolicy
{
    /// <summary>The policy's name in config (<c>HealthCheck:Active:Policy</c>).</summary>
    public const string PolicyName = "ConsecutiveFailures";

    private static readonly SlotPart<FailureCount> CountPart = new();
    private readonly double _defaultThreshold = options.Value.DefaultThreshold;

    public string Name => PolicyName;

    public void ProbingCompleted(ClusterState cluster, IReadOnlyList<DestinationProbingResult> probingResults)
    {
        if (probingResults.Count == 0)
        {
            return;
        }

        var threshold = Threshold(cluster);
        var health = new NewActiveDestinationHealth[probingResults.Count];
        for (var i = 0; i < probingResults.Count; i++)
        {
            var result = probingResults[i];
            var count = slots.Of(result.Destination).GetOrAdd(CountPart, 0, static _ => new FailureCount());
            health[i] = new NewActiveDestinationHealth(result.Destination, count.Judge(result.Response, threshold));
        }

        updater.SetActive(cluster, health);
    }

    /// <summary>The cluster's threshold; a value that does not parse counts as none, as in YARP.</summary>
    private double Threshold(ClusterState cluster) =>
        cluster.Model.Config.Metadata?.TryGetValue(ConsecutiveFailuresHealthPolicyOptions.ThresholdMetadataName, out var text) == true
        && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var threshold)
            ? threshold
            : _defaultThreshold;

    /// <summary>One destination's failed probes since its last good one.</summary>
    private sealed class FailureCount
    {
        private long _failures;

        public DestinationHealth Judge(HttpResponseMessage? response, double threshold)
        {
            if (response?.IsSuccessStatusCode == true)
            {
                Interlocked.Exchange(ref _failures, 0);
                return DestinationHealth.Healthy;
            }

            return Interlocked.Increment(ref _failures) < threshold ? DestinationHealth.Healthy : DestinationHealth.Unhealthy;
        }
    }
}
