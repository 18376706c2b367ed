using Balancer.Telemetry;
using Prometheus;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Health;

/// <summary>
/// Passive health policy <c>FirstFailure</c>: one transport failure (refused, reset, timeout, open circuit)
/// takes the destination out of rotation at once, until the reactivation period ends or an active probe
/// succeeds. YARP's <c>TransportFailureRate</c> waits for a minimum number of requests and a failure rate,
/// so a dead backend keeps receiving traffic for a while; the retry middleware hides those failures from
/// clients, but each one costs a connect attempt and latency.
/// </summary>
internal sealed class FirstFailurePassivePolicy(DestinationHealthTracker tracker, BalancerMetricsRegistry metrics) : IPassiveHealthCheckPolicy
{
    public const string PolicyName = "FirstFailure";

    private readonly Counter _truncated = metrics.Factory.CreateCounter(
        "balancer_destination_truncated_responses_total",
        "Responses whose body the destination cut (reset or closed early) after sending its headers.",
        new CounterConfiguration { LabelNames = ["cluster", "destination"] });

    /// <summary>Used when the cluster sets no <c>HealthCheck:Passive:ReactivationPeriod</c>.</summary>
    public static readonly TimeSpan DefaultReactivationPeriod = TimeSpan.FromSeconds(10);

    public string Name => PolicyName;

    public void RequestProxied(HttpContext context, ClusterState cluster, DestinationState destination)
    {
        var error = context.GetForwarderErrorFeature();
        if (error is null)
        {
            return;
        }

        if (error.Error == ForwarderError.ResponseBodyDestination)
        {
            _truncated.WithLabels(cluster.ClusterId, destination.DestinationId).Inc();
        }

        if (destination.Health.Passive == DestinationHealth.Unhealthy)
        {
            return;
        }

        var kind = TransportFailure.Classify(error.Error, error.Exception);
        if (kind is FailureKind.None or FailureKind.Local or FailureKind.MarkedDown)
        {
            // A socket the balancer could not open itself says nothing about the destination; a request
            // withdrawn because the destination went Down must not eject it a second time.
            return;
        }

        var period = cluster.Model.Config.HealthCheck?.Passive?.ReactivationPeriod ?? DefaultReactivationPeriod;
        // Refused or cut connections mean the process went away: its next good probe proves it is back. A
        // timeout means it is up but not answering traffic, which a probe cannot disprove.
        tracker.SetPassive(cluster, destination, DestinationHealth.Unhealthy, period, "request failed: " + TransportFailure.Label(kind),
            clearedByProbe: kind is FailureKind.Refused or FailureKind.Connect or FailureKind.Reset);
    }
}
