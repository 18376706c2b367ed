using System.Net;
using Balancer.Health;
using Balancer.PerDestination;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Tests.Health;

/// <summary>The balancer's ConsecutiveFailures policy judges probes as YARP's does, its counts kept in the destination slots.</summary>
[Trait("Category", "Unit")]
public sealed class ConsecutiveFailuresPolicyTests
{
    private readonly RecordingUpdater _updater = new();
    private readonly DestinationSlots _slots = new();
    private readonly DestinationState _a = new("a");
    private readonly DestinationState _b = new("b");

    [Fact]
    public void DefaultThreshold_SecondFailureInARow_Unhealthy_SuccessClearsTheCount()
    {
        var policy = Policy();
        var cluster = Cluster(threshold: null);

        Assert.Equal([DestinationHealth.Healthy, DestinationHealth.Healthy], Judge(policy, cluster, (_a, false), (_b, true)));
        Assert.Equal([DestinationHealth.Unhealthy, DestinationHealth.Healthy], Judge(policy, cluster, (_a, false), (_b, false)));
        Assert.Equal([DestinationHealth.Healthy, DestinationHealth.Unhealthy], Judge(policy, cluster, (_a, true), (_b, false)));
        // A's count started again at its success: one failure is not two.
        Assert.Equal([DestinationHealth.Healthy], Judge(policy, cluster, (_a, false)));
        Assert.Equal(2, _slots.Count());
    }

    [Theory]
    [InlineData("1", 1)]
    [InlineData("3", 3)]
    [InlineData("2.5", 3)]
    [InlineData("not a number", 2)]
    public void ClusterThreshold_FromMetadata_UnparsableMeansTheDefault(string threshold, int failuresToUnhealthy)
    {
        var policy = Policy();
        var cluster = Cluster(threshold);

        for (var failure = 1; failure < failuresToUnhealthy; failure++)
        {
            Assert.Equal([DestinationHealth.Healthy], Judge(policy, cluster, (_a, false)));
        }

        Assert.Equal([DestinationHealth.Unhealthy], Judge(policy, cluster, (_a, false)));
    }

    [Fact]
    public void NoResults_NothingReported()
    {
        Policy().ProbingCompleted(Cluster(threshold: null), []);

        Assert.Empty(_updater.Reports);
    }

    private ConsecutiveFailuresPolicy Policy() =>
        new(Options.Create(new ConsecutiveFailuresHealthPolicyOptions()), _updater, _slots);

    private static ClusterState Cluster(string? threshold) =>
        new("c", new ClusterModel(
            new ClusterConfig
            {
                ClusterId = "c",
                Metadata = threshold is null ? null : new Dictionary<string, string> { [ConsecutiveFailuresHealthPolicyOptions.ThresholdMetadataName] = threshold },
            },
            new HttpMessageInvoker(new SocketsHttpHandler())));

    private DestinationHealth[] Judge(ConsecutiveFailuresPolicy policy, ClusterState cluster, params (DestinationState Destination, bool Success)[] probes)
    {
        var results = probes.Select(p => p.Success
            ? new DestinationProbingResult(p.Destination, new HttpResponseMessage(HttpStatusCode.OK), null)
            : new DestinationProbingResult(p.Destination, new HttpResponseMessage(HttpStatusCode.ServiceUnavailable), null)).ToList();
        policy.ProbingCompleted(cluster, results);
        var report = _updater.Reports[^1];
        Assert.Equal(probes.Select(p => p.Destination.DestinationId), report.Select(h => h.Destination.DestinationId));
        return [.. report.Select(h => h.NewActiveHealth)];
    }

    private sealed class RecordingUpdater : IDestinationHealthUpdater
    {
        public List<NewActiveDestinationHealth[]> Reports { get; } = [];

        public void SetActive(ClusterState cluster, IEnumerable<NewActiveDestinationHealth> newHealthPairs) => Reports.Add([.. newHealthPairs]);

        public void SetPassive(ClusterState cluster, DestinationState destination, DestinationHealth newHealth, TimeSpan reactivationPeriod) =>
            throw new InvalidOperationException("an active policy sets no passive health");
    }
}
