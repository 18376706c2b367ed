using System.Net;
using Balancer.Health;
using Balancer.Telemetry;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Prometheus;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Tests.Health;

/// <summary>
/// The tracker against YARP's real cluster updater (from <c>AddReverseProxy()</c>), with fake time: when a
/// destination leaves and rejoins the available list, and what is logged and counted.
/// </summary>
[Trait("Category", "Unit")]
public sealed class DestinationHealthTrackerTests : IDisposable
{
    private static readonly TimeSpan Period = TimeSpan.FromSeconds(10);
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly ServiceProvider _services;
    private readonly BalancerMetricsRegistry _metrics = new();
    private readonly DestinationHealthTracker _tracker;
    private readonly ClusterState _cluster;
    private readonly DestinationState _a;
    private readonly DestinationState _b;

    public DestinationHealthTrackerTests()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddReverseProxy();
        _services = services.BuildServiceProvider();
        var updater = _services.GetRequiredService<IClusterDestinationsUpdater>();
        _tracker = new DestinationHealthTracker(updater, _time, _metrics, NullLogger<DestinationHealthTracker>.Instance);
        _cluster = new ClusterState("c", new ClusterModel(
            new ClusterConfig { ClusterId = "c", HealthCheck = new HealthCheckConfig
            {
                // YARP filters nothing for a cluster without health checks.
                Active = new ActiveHealthCheckConfig { Enabled = true },
                Passive = new PassiveHealthCheckConfig { Enabled = true },
                AvailableDestinationsPolicy = "HealthyAndUnknown",
            } },
            new HttpMessageInvoker(new SocketsHttpHandler())));
        _a = Add("A");
        _b = Add("B");
        updater.UpdateAllDestinations(_cluster);
        _tracker.SetActive(_cluster, [new(_a, DestinationHealth.Healthy), new(_b, DestinationHealth.Healthy)]);
    }

    [Fact]
    public void PassiveFailure_LeavesAtOnce_ReturnsWhenReactivationPeriodEnds()
    {
        _tracker.SetPassive(_cluster, _b, DestinationHealth.Unhealthy, Period, "request failed: timeout", clearedByProbe: false);
        Assert.Equal(["A"], Available());
        Assert.Equal(("Up", "Down", "request failed: timeout"), Last("B"));

        _time.Advance(Period - TimeSpan.FromMilliseconds(1));
        Assert.Equal(["A"], Available());
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(["A", "B"], Available());
        Assert.Equal(("Down", "Up", "passive failure expired after 00:00:10"), Last("B"));
        Assert.Equal(1, Transitions("B", "down"));
        Assert.Equal(2, Transitions("B", "up"));
    }

    [Fact]
    public void ConnectionFailure_ClearedOnlyByAGoodProbeSentAfterIt()
    {
        StartProbes();
        _time.Advance(TimeSpan.FromMilliseconds(5));
        _tracker.SetPassive(_cluster, _b, DestinationHealth.Unhealthy, Period, "request failed: refused", clearedByProbe: true);

        // This probe was already under way when the request failed: its good answer may predate the failure.
        _time.Advance(TimeSpan.FromMilliseconds(5));
        ProbeRound(success: true);
        Assert.Equal(["A"], Available());

        _time.Advance(TimeSpan.FromSeconds(1));
        StartProbes();
        ProbeRound(success: false);
        Assert.Equal(["A"], Available());

        _time.Advance(TimeSpan.FromSeconds(1));
        StartProbes();
        ProbeRound(success: true);
        Assert.Equal(["A", "B"], Available());
        Assert.Equal(("Down", "Up", "active health probe succeeded after the connection failure"), Last("B"));
    }

    [Fact]
    public void TimeoutFailure_NotClearedByGoodProbes_ButByActiveRecovery()
    {
        _tracker.SetPassive(_cluster, _b, DestinationHealth.Unhealthy, Period, "request failed: timeout", clearedByProbe: false);
        for (var i = 0; i < 3; i++)
        {
            _time.Advance(TimeSpan.FromSeconds(1));
            StartProbes();
            ProbeRound(success: true);
        }

        Assert.Equal(["A"], Available());

        // Probes failing then passing again (the process was restarted) end any passive failure.
        _tracker.SetActive(_cluster, [new(_b, DestinationHealth.Unhealthy)]);
        _tracker.SetActive(_cluster, [new(_b, DestinationHealth.Healthy)]);
        Assert.Equal(["A", "B"], Available());
        Assert.Equal(("Down", "Up", "active health probe succeeded"), Last("B"));
        // The expired timer of the cleared failure must not fire into a later state.
        _time.Advance(Period);
        Assert.Equal(("Down", "Up", "active health probe succeeded"), Last("B"));
    }

    [Fact]
    public void FailureOfANewDestination_NotClearedByItsFirstGoodProbe()
    {
        var c = Add("C");
        _services.GetRequiredService<IClusterDestinationsUpdater>().UpdateAllDestinations(_cluster);
        _tracker.SetPassive(_cluster, c, DestinationHealth.Unhealthy, Period, "request failed: timeout", clearedByProbe: false);

        // Unknown -> Healthy is a first probe, not a recovery: the timeout stands until its period ends.
        _tracker.SetActive(_cluster, [new(c, DestinationHealth.Healthy)]);
        Assert.Equal(["A", "B"], Available());
        _time.Advance(Period);
        Assert.Equal(["A", "B", "C"], Available());
    }

    [Fact]
    public void SameStateTwice_LogsAndCountsOneTransition()
    {
        _tracker.SetActive(_cluster, [new(_b, DestinationHealth.Unhealthy)]);
        _tracker.SetPassive(_cluster, _b, DestinationHealth.Unhealthy, Period, "request failed: refused", clearedByProbe: true);
        _tracker.SetActive(_cluster, [new(_b, DestinationHealth.Unhealthy)]);

        Assert.Equal(1, Transitions("B", "down"));
        Assert.Equal(("Up", "Down", "active health probe failed"), Last("B"));
    }

    [Fact]
    public void RepeatedEjections_EachLastsLonger_ReturnOnlyAfterSeveralGoodProbesInARow()
    {
        // First ejection for a cut connection: the next good probe (a restarted process) ends it.
        Fail("reset");
        _time.Advance(TimeSpan.FromSeconds(1));
        StartProbes();
        ProbeRound(success: true);
        Assert.Equal(["A", "B"], Available());

        // Second: base x 2, and good probes do not end it early.
        Fail("reset");
        Assert.Equal(("Up", "Down", "request failed: reset (ejection 2 within 00:05:00: out for 00:00:20)"), Last("B"));
        for (var i = 0; i < 19; i++)
        {
            _time.Advance(TimeSpan.FromSeconds(1));
            StartProbes();
            ProbeRound(success: true);
        }

        Assert.Equal(["A"], Available());
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(["A", "B"], Available());

        // Third: base x 3; a failed probe near its end means three good ones in a row are needed after it.
        Fail("reset");
        _time.Advance(TimeSpan.FromSeconds(29));
        StartProbes();
        ProbeRound(success: false);
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(["A"], Available());
        for (var i = 0; i < 2; i++)
        {
            StartProbes();
            ProbeRound(success: true);
            Assert.Equal(["A"], Available());
        }

        StartProbes();
        ProbeRound(success: true);
        Assert.Equal(["A", "B"], Available());
        Assert.Equal(("Down", "Up", "ejection ended and 3 probes in a row succeeded"), Last("B"));
    }

    [Fact]
    public void EjectionTime_IsCappedAtMaxEjectionTime_AndOldEjectionsAreForgotten()
    {
        using var tracker = Tracker(new OutlierDetectionOptions { MaxEjectionTime = TimeSpan.FromSeconds(15) });
        // 10 s; then 2 x 10 s capped at 15 s; then 10 s again, both earlier ejections being 15 s or more old.
        foreach (var seconds in new[] { 10, 15, 10 })
        {
            tracker.SetPassive(_cluster, _b, DestinationHealth.Unhealthy, Period, "request failed: timeout", clearedByProbe: false);
            var expected = TimeSpan.FromSeconds(seconds);
            _time.Advance(expected - TimeSpan.FromMilliseconds(1));
            Assert.Equal(["A"], Available());
            for (var probe = 0; probe < 3; probe++)
            {
                ProbeRound(success: true, tracker);
            }

            _time.Advance(TimeSpan.FromMilliseconds(1));
            Assert.Equal(["A", "B"], Available());
        }
    }

    [Fact]
    public void MaxEjectionPercent_KeepsTheRestInRotation_ButOneCanAlwaysBeEjected()
    {
        using var tracker = Tracker(new OutlierDetectionOptions { MaxEjectionPercent = 0 });
        tracker.SetPassive(_cluster, _a, DestinationHealth.Unhealthy, Period, "request failed: refused", clearedByProbe: true);
        Assert.Equal(["B"], Available());
        tracker.SetPassive(_cluster, _b, DestinationHealth.Unhealthy, Period, "request failed: refused", clearedByProbe: true);
        Assert.Equal(["B"], Available());

        _time.Advance(Period);
        Assert.Equal(["A", "B"], Available());
        tracker.SetPassive(_cluster, _b, DestinationHealth.Unhealthy, Period, "request failed: refused", clearedByProbe: true);
        Assert.Equal(["A"], Available());
    }

    [Fact]
    public void MaxEjectionPercent_CountsTheEjectedStillInTheCluster_ReturnedOrRemovedOnesFreeTheirPlace()
    {
        // Ten destinations, at most 30 % (three) ejected at once.
        using var tracker = Tracker(new OutlierDetectionOptions { MaxEjectionPercent = 30 });
        var more = Enumerable.Range(0, 8).Select(i => Add($"M{i}")).ToArray();
        _services.GetRequiredService<IClusterDestinationsUpdater>().UpdateAllDestinations(_cluster);
        foreach (var destination in more[..3])
        {
            tracker.SetPassive(_cluster, destination, DestinationHealth.Unhealthy, Period, "request failed: refused", clearedByProbe: true);
        }

        tracker.SetPassive(_cluster, more[3], DestinationHealth.Unhealthy, Period, "request failed: refused", clearedByProbe: true);
        Assert.Equal(DestinationHealth.Unknown, more[3].Health.Passive);

        // One comes back: its place is free again.
        tracker.SetPassive(_cluster, more[0], DestinationHealth.Unknown, Period, "request succeeded", clearedByProbe: false);
        tracker.SetPassive(_cluster, more[3], DestinationHealth.Unhealthy, Period, "request failed: refused", clearedByProbe: true);
        Assert.Equal(DestinationHealth.Unhealthy, more[3].Health.Passive);

        // A reload removes an ejected one (and adds another, so the cluster stays at ten): it no longer counts.
        tracker.SetPassive(_cluster, more[4], DestinationHealth.Unhealthy, Period, "request failed: refused", clearedByProbe: true);
        Assert.Equal(DestinationHealth.Unknown, more[4].Health.Passive);
        Assert.True(_cluster.Destinations.TryRemove(more[1].DestinationId, out _));
        Add("N");
        tracker.SetPassive(_cluster, more[4], DestinationHealth.Unhealthy, Period, "request failed: refused", clearedByProbe: true);
        Assert.Equal(DestinationHealth.Unhealthy, more[4].Health.Passive);
    }

    [Fact]
    public void Probes_ExactlyTheLast20Kept_NewestFirst_OldestDropped()
    {
        var started = new List<DateTimeOffset>();
        for (var round = 1; round <= 25; round++)
        {
            _time.Advance(TimeSpan.FromSeconds(1));
            started.Add(_time.GetUtcNow());
            _tracker.ProbeStarting(_a);
            _tracker.ProbeStarting(_b).Elapsed = TimeSpan.FromMilliseconds(round);
            ProbeRound(success: round % 2 == 0);
        }

        var probes = _tracker.Explain(_b).Probes;
        Assert.Equal(20, probes.Count);
        // Rounds 25 down to 6: the first five were dropped, oldest first.
        Assert.Equal(Enumerable.Range(6, 20).Reverse().Select(round => started[round - 1]), probes.Select(p => p.Time));
        Assert.Equal(Enumerable.Range(6, 20).Reverse().Select(round => (double)round), probes.Select(p => p.LatencyMs!.Value));
        Assert.Equal(Enumerable.Range(6, 20).Reverse().Select(round => round % 2 == 0 ? "Success" : "Failure"), probes.Select(p => p.Outcome));
        Assert.Equal(Enumerable.Range(6, 20).Reverse().Select(round => (int?)(round % 2 == 0 ? 200 : 503)), probes.Select(p => p.StatusCode));
        Assert.All(probes, p => Assert.Null(p.Error));
        Assert.Equal(20, _tracker.Explain(_a).Probes.Count);
    }

    [Fact]
    public void Probes_FailedSends_RecordTheErrorKind_NoStatusCode()
    {
        var refused = new HttpRequestException(HttpRequestError.ConnectionError, "refused", new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.ConnectionRefused));
        foreach (var exception in new Exception[] { refused, new TaskCanceledException("probe timeout"), new HttpRequestException(HttpRequestError.ResponseEnded, "cut") })
        {
            _tracker.ProbeStarting(_b).Elapsed = TimeSpan.FromMilliseconds(1.5);
            _tracker.ProbesCompleted(_cluster, [new DestinationProbingResult(_b, null, exception)]);
        }

        // Newest first.
        Assert.Equal(
            [("Failure", (int?)null, "reset", 1.5), ("Failure", null, "timeout", 1.5), ("Failure", null, "refused", 1.5)],
            _tracker.Explain(_b).Probes.Select(p => (p.Outcome, p.StatusCode, p.Error, p.LatencyMs!.Value)));
    }

    [Fact]
    public void Flaps_CountedForExactlyTenMinutes_UpDownEitherWay()
    {
        // Up -> Down at t0, Down -> Up one minute later.
        var t0 = _time.GetUtcNow();
        _tracker.SetActive(_cluster, [new(_b, DestinationHealth.Unhealthy)]);
        _time.Advance(TimeSpan.FromMinutes(1));
        _tracker.SetActive(_cluster, [new(_b, DestinationHealth.Healthy)]);
        Assert.Equal(2, _tracker.Explain(_b).Flaps);
        Assert.Equal(0, _tracker.Explain(_a).Flaps);

        _time.Advance(t0 + TimeSpan.FromMinutes(10) - TimeSpan.FromTicks(1) - _time.GetUtcNow());
        Assert.Equal(2, _tracker.Explain(_b).Flaps);
        _time.Advance(TimeSpan.FromTicks(1));
        Assert.Equal(1, _tracker.Explain(_b).Flaps);
        _time.Advance(TimeSpan.FromMinutes(1) - TimeSpan.FromTicks(1));
        Assert.Equal(1, _tracker.Explain(_b).Flaps);
        _time.Advance(TimeSpan.FromTicks(1));
        Assert.Equal(0, _tracker.Explain(_b).Flaps);
    }

    [Fact]
    public void PassiveEvents_EjectionAndReturn_WithTimeAndReason_NewestFirst()
    {
        var ejectedAt = _time.GetUtcNow();
        _tracker.SetPassive(_cluster, _b, DestinationHealth.Unhealthy, Period, "request failed: timeout", clearedByProbe: false);
        _time.Advance(Period);

        Assert.Equal(
            [
                new PassiveEvent(ejectedAt + Period, "Returned", "passive failure expired after 00:00:10"),
                new PassiveEvent(ejectedAt, "Ejected", "request failed: timeout (out for up to 00:00:10)"),
            ],
            _tracker.Explain(_b).PassiveEvents);
        Assert.Empty(_tracker.Explain(_a).PassiveEvents);
        // Down and back: two flaps.
        Assert.Equal(2, _tracker.Explain(_b).Flaps);
    }

    [Fact]
    public void PassiveEvents_FailureKeptInRotationByTheEjectionCap_IsRecorded()
    {
        using var tracker = Tracker(new OutlierDetectionOptions { MaxEjectionPercent = 0 });
        tracker.SetPassive(_cluster, _a, DestinationHealth.Unhealthy, Period, "request failed: refused", clearedByProbe: true);
        tracker.SetPassive(_cluster, _b, DestinationHealth.Unhealthy, Period, "request failed: reset", clearedByProbe: true);

        var kept = Assert.Single(tracker.Explain(_b).PassiveEvents);
        Assert.Equal(("KeptInRotation", "request failed: reset; 0 % of the cluster is already ejected"), (kept.Kind, kept.Reason));
        Assert.Equal(0, tracker.Explain(_b).Flaps);
    }

    [Fact]
    public void PassiveEvents_ExactlyTheLast20Kept()
    {
        using var tracker = Tracker(new OutlierDetectionOptions { MaxEjectionTime = Period });
        for (var i = 0; i < 15; i++)
        {
            tracker.SetPassive(_cluster, _b, DestinationHealth.Unhealthy, Period, $"request failed: timeout {i}", clearedByProbe: false);
            _time.Advance(Period);
        }

        var events = tracker.Explain(_b).PassiveEvents;
        Assert.Equal(20, events.Count);
        Assert.Equal("Returned", events[0].Kind);
        Assert.StartsWith("request failed: timeout 14", events[1].Reason, StringComparison.Ordinal);
        // 30 events: the oldest kept is the ejection of the sixth failure.
        Assert.StartsWith("request failed: timeout 5", events[^1].Reason, StringComparison.Ordinal);
        Assert.Equal("Ejected", events[^1].Kind);
    }

    [Fact]
    public void ActiveUnknownToHealthy_KeepsTheAvailableList_IntoOrOutOfUnhealthy_ReplacesIt()
    {
        var c = Add("C");
        _services.GetRequiredService<IClusterDestinationsUpdater>().UpdateAllDestinations(_cluster);
        var withUnknown = _cluster.DestinationsState.AvailableDestinations;
        Assert.Equal(["A", "B", "C"], Available());

        // Judged one probe at a time, a first round of thousands would otherwise rebuild the list once per destination.
        _tracker.SetActive(_cluster, [new(c, DestinationHealth.Healthy)]);
        Assert.Same(withUnknown, _cluster.DestinationsState.AvailableDestinations);
        Assert.Equal(("Unknown", "Up", "active health probe succeeded"), Last("C"));

        _tracker.SetActive(_cluster, [new(c, DestinationHealth.Unhealthy)]);
        Assert.Equal(["A", "B"], Available());
        _tracker.SetActive(_cluster, [new(c, DestinationHealth.Unknown)]);
        Assert.Equal(["A", "B", "C"], Available());
    }

    public void Dispose()
    {
        _tracker.Dispose();
        _services.Dispose();
    }

    private DestinationHealthTracker Tracker(OutlierDetectionOptions options) =>
        new(_services.GetRequiredService<IClusterDestinationsUpdater>(), _time, new BalancerMetricsRegistry(), NullLogger<DestinationHealthTracker>.Instance, options);

    private void Fail(string reason) =>
        _tracker.SetPassive(_cluster, _b, DestinationHealth.Unhealthy, Period, "request failed: " + reason, clearedByProbe: true);

    private DestinationState Add(string id)
    {
        var destination = new DestinationState(id, new DestinationModel(new DestinationConfig { Address = $"http://127.0.0.1/{id}" }));
        _cluster.Destinations.TryAdd(id, destination);
        return destination;
    }

    private void StartProbes()
    {
        _tracker.ProbeStarting(_a);
        _tracker.ProbeStarting(_b);
    }

    private void ProbeRound(bool success, DestinationHealthTracker? tracker = null)
    {
        var status = success ? HttpStatusCode.OK : HttpStatusCode.ServiceUnavailable;
        (tracker ?? _tracker).ProbesCompleted(_cluster, [
            new DestinationProbingResult(_a, new HttpResponseMessage(HttpStatusCode.OK), null),
            new DestinationProbingResult(_b, new HttpResponseMessage(status), null),
        ]);
    }

    private string[] Available() => [.. _cluster.DestinationsState.AvailableDestinations.Select(d => d.DestinationId).Order(StringComparer.Ordinal)];

    private (string From, string To, string Reason) Last(string destination)
    {
        var change = _tracker.LastChange("c", destination)!;
        return (change.From, change.To, change.Reason);
    }

    private double Transitions(string destination, string to)
    {
        using var stream = new MemoryStream();
        _metrics.ExportAsync(stream).GetAwaiter().GetResult();
        return PrometheusText.Parse(System.Text.Encoding.UTF8.GetString(stream.ToArray()))
            .Matching($"balancer_destination_health_transitions_total{{cluster=\"c\",destination=\"{destination}\",to=\"{to}\"}}")
            .Sum(s => s.Value);
    }
}
