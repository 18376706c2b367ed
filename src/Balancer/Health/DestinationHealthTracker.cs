using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Balancer.PerDestination;
using Balancer.Telemetry;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Health;

/// <summary>
/// Replaces YARP's <see cref="IDestinationHealthUpdater"/> so that every change of a destination's
/// operator-facing health (<c>Up</c>/<c>Down</c>/<c>Unknown</c>) is seen in one place: logged once with its
/// reason, counted, and remembered for the status API, with each destination's recent probes, passive events
/// and flaps (<see cref="DestinationHealthLog"/>). YARP raises no event on a health change, and its own
/// updater re-activates passively failed destinations from a private timer that a decorator could not see.
/// </summary>
/// <remarks>
/// Semantics follow YARP's updater (passive failures expire after the reactivation period, back to
/// <c>Unknown</c>), with two additions so that a restarted backend is back after its first good probe instead
/// of waiting out the whole period:
/// <list type="bullet">
/// <item>a passive failure at connection level (refused, reset: the process went away) is cleared by a
/// successful probe that started after the failure;</item>
/// <item>any passive failure is cleared when the active state comes back from Unhealthy to Healthy.</item>
/// </list>
/// A destination that answers probes but fails real traffic (hangs past the timeout, trips the circuit
/// breaker) stays out for the reactivation period: its probes prove nothing about the traffic.
/// </remarks>
internal sealed partial class DestinationHealthTracker : IDestinationHealthUpdater, IDestinationHealthHistory, IDisposable
{
    private readonly IClusterDestinationsUpdater _clusterUpdater;
    private readonly TimeProvider _time;
    private readonly ILogger<DestinationHealthTracker> _logger;
    private readonly DestinationEventCounts _transitions;
    private readonly ConcurrentDictionary<(string Cluster, string Destination), HealthChange> _last = new();
    private readonly Dictionary<DestinationState, Reactivation> _reactivations = [];

    // Each destination's log and newest probe live in its slot, keyed by the state object, which a reload keeps for a
    // destination it keeps: a removed destination's go with it. The probe's holder is replaced in place: replacing
    // what an old object holds on every probe is cheaper for the young collections than a new holder each time.
    private static readonly SlotPart<DestinationHealthLog> LogPart = new();
    private static readonly SlotPart<LatestProbe> ProbePart = new();
    private readonly DestinationSlots _slots;

    // Probe requests are made from a destination's model; the model's state is found through its cluster.
    private readonly ConditionalWeakTable<ClusterState, StatesByModel> _byModel = new();
    private readonly Dictionary<DestinationState, Ejections> _ejections = [];

    // Per cluster, the destinations whose passive health this tracker set to Unhealthy (the only writer of it since it
    // replaced YARP's updater): the ejection cap counts these, not every destination's health (a read of each of
    // thousands of objects, a cache miss each, on every passive failure).
    private readonly Dictionary<string, HashSet<DestinationState>> _ejected = new(StringComparer.OrdinalIgnoreCase);
    private readonly OutlierDetectionOptions _outliers;
    private readonly Runtime.AvailabilityChanges? _availability;

    // Health changes are rare (probe rounds, failures); one lock keeps "read view, change, read view" atomic
    // so two racing updates never log the same transition twice or miss one.
    private readonly Lock _gate = new();

    public DestinationHealthTracker(IClusterDestinationsUpdater clusterUpdater, TimeProvider time, BalancerMetricsRegistry metrics, ILogger<DestinationHealthTracker> logger,
        OutlierDetectionOptions? outliers = null, DestinationSlots? slots = null,
        Runtime.AvailabilityChanges? availability = null)
    {
        _slots = slots ?? new DestinationSlots();
        _availability = availability;
        _clusterUpdater = clusterUpdater;
        _outliers = outliers ?? new OutlierDetectionOptions();
        _time = time;
        _logger = logger;
        _transitions = metrics.Events;
    }

    /// <summary>
    /// Raised on every change of operator-facing health (cluster, destination, from, to), under the tracker's
    /// lock: handlers must be quick and must not call back into the tracker.
    /// </summary>
    public event Action<ClusterState, DestinationState, string, string>? HealthChanged;

    public HealthChange? LastChange(string clusterId, string destinationId) =>
        _last.TryGetValue((clusterId, destinationId), out var change) ? change : null;

    public HealthExplanation Explain(DestinationState destination) => Log(destination).Snapshot(_time.GetUtcNow());

    public void SetActive(ClusterState cluster, IEnumerable<NewActiveDestinationHealth> newHealthPairs)
    {
        // Only a move into or out of Unhealthy changes an available set (both YARP policies the config accepts count
        // Unknown and Healthy alike). Probes judged one at a time would otherwise rebuild the cluster's list, O(N),
        // for each destination that turns from Unknown to Healthy: O(N^2) for the first round of a large cluster.
        List<DestinationState>? changed = null;
        lock (_gate)
        {
            foreach (var pair in newHealthPairs)
            {
                var destination = pair.Destination;
                var health = destination.Health;
                if (pair.NewActiveHealth == health.Active)
                {
                    continue;
                }

                var before = DestinationHealthView.Of(destination);
                var recovered = pair.NewActiveHealth == DestinationHealth.Healthy;
                // Probes failing and then passing again means the backend was restarted or repaired.
                var restarted = recovered && health.Active == DestinationHealth.Unhealthy;
                if ((health.Active == DestinationHealth.Unhealthy) != (pair.NewActiveHealth == DestinationHealth.Unhealthy))
                {
                    (changed ??= []).Add(destination);
                }

                health.Active = pair.NewActiveHealth;
                if (restarted && health.Passive == DestinationHealth.Unhealthy)
                {
                    CancelReactivation(destination);
                    SetPassiveHealth(cluster, destination, DestinationHealth.Unknown);
                    Returned(destination, "active health probes failed and then succeeded again");
                }

                Record(cluster, destination, before, recovered ? "active health probe succeeded" : "active health probe failed");
            }
        }

        if (changed is not null)
        {
            UpdateAvailable(cluster, changed);
        }
    }

    public void SetPassive(ClusterState cluster, DestinationState destination, DestinationHealth newHealth, TimeSpan reactivationPeriod) =>
        SetPassive(cluster, destination, newHealth, reactivationPeriod, newHealth == DestinationHealth.Unhealthy ? "passive health check failed" : "passive health check passed", clearedByProbe: false);

    /// <summary>
    /// Like <see cref="SetPassive(ClusterState, DestinationState, DestinationHealth, TimeSpan)"/>, with the reason
    /// to log and whether a later successful probe may end the failure early (connection-level failures).
    /// </summary>
    public void SetPassive(ClusterState cluster, DestinationState destination, DestinationHealth newHealth, TimeSpan reactivationPeriod, string reason, bool clearedByProbe)
    {
        lock (_gate)
        {
            if (destination.Health.Passive == newHealth)
            {
                return;
            }

            var before = DestinationHealthView.Of(destination);
            if (newHealth == DestinationHealth.Unhealthy)
            {
                if (!MayEject(cluster))
                {
                    LogEjectionCapped(cluster.ClusterId, destination.DestinationId, reason, _outliers.MaxEjectionPercent);
                    Log(destination).AddEvent(new PassiveEvent(_time.GetUtcNow(), PassiveEvent.KeptInRotation,
                        $"{reason}; {_outliers.MaxEjectionPercent} % of the cluster is already ejected"));
                    return;
                }

                var (count, duration) = Eject(destination, reactivationPeriod);
                // A repeated ejection proves the destination breaks traffic while its probes pass: it waits out
                // the whole ejection, and its probes must then pass several times in a row.
                clearedByProbe &= count == 1;
                if (count > 1)
                {
                    reason += $" (ejection {count} within {_outliers.MaxEjectionTime}: out for {duration})";
                }

                SetPassiveHealth(cluster, destination, newHealth);
                CancelReactivation(destination);
                Log(destination).AddEvent(new PassiveEvent(_time.GetUtcNow(), PassiveEvent.Ejected, count > 1 ? reason : $"{reason} (out for up to {duration})"));
                var reactivation = new Reactivation(this, cluster, destination, duration, _time.GetUtcNow(), clearedByProbe, repeated: count > 1);
                _reactivations[destination] = reactivation;
                reactivation.Start(_time);
            }
            else
            {
                if (destination.Health.Passive == DestinationHealth.Unhealthy)
                {
                    Returned(destination, reason);
                }

                SetPassiveHealth(cluster, destination, newHealth);
                CancelReactivation(destination);
            }

            Record(cluster, destination, before, reason);
        }

        // On the caller's thread (YARP's own updater defers this to the thread pool): the very next pick must
        // skip the destination, so that only requests already in flight meet a dead backend.
        UpdateAvailable(cluster, destination);
    }

    /// <summary>True while fewer destinations than the cap are ejected by passive checks; one is always allowed.</summary>
    private bool MayEject(ClusterState cluster)
    {
        var total = cluster.Destinations.Count;
        var ejected = 0;
        if (_ejected.TryGetValue(cluster.ClusterId, out var set))
        {
            // A destination a reload removed (or replaced by a new one of the same id) no longer counts.
            set.RemoveWhere(d => d.Health.Passive != DestinationHealth.Unhealthy
                || !cluster.Destinations.TryGetValue(d.DestinationId, out var current) || !ReferenceEquals(current, d));
            ejected = set.Count;
        }

        return ejected < Math.Max(1, total * _outliers.MaxEjectionPercent / 100);
    }

    /// <summary>Sets a destination's passive health, keeping the cluster's set of ejected destinations with it.</summary>
    private void SetPassiveHealth(ClusterState cluster, DestinationState destination, DestinationHealth health)
    {
        destination.Health.Passive = health;
        if (health == DestinationHealth.Unhealthy)
        {
            if (!_ejected.TryGetValue(cluster.ClusterId, out var set))
            {
                set = new HashSet<DestinationState>(ReferenceEqualityComparer.Instance);
                _ejected[cluster.ClusterId] = set;
            }

            set.Add(destination);
        }
        else if (_ejected.TryGetValue(cluster.ClusterId, out var set))
        {
            set.Remove(destination);
        }
    }

    /// <summary>Records an ejection; its number among the recent ones, and how long it lasts (base x number, capped).</summary>
    private (int Count, TimeSpan Duration) Eject(DestinationState destination, TimeSpan period)
    {
        var now = _time.GetUtcNow();
        if (!_ejections.TryGetValue(destination, out var ejections))
        {
            ejections = new Ejections();
            _ejections[destination] = ejections;
        }

        ejections.Starts.RemoveAll(start => now - start >= _outliers.MaxEjectionTime);
        ejections.Starts.Add(now);
        ejections.GoodProbes = 0;
        ejections.WaitingForProbes = false;
        var count = ejections.Starts.Count;
        var cap = period > _outliers.MaxEjectionTime ? period : _outliers.MaxEjectionTime;
        var duration = period * count;
        return (count, duration < cap ? duration : cap);
    }

    /// <summary>
    /// Called as a probe request is created for <paramref name="destination"/> of <paramref name="cluster"/> (null when
    /// the cluster is gone), just before it is sent; the attempt times the send.
    /// </summary>
    public ProbeAttempt ProbeStarting(ClusterState? cluster, DestinationModel destination)
    {
        if (cluster is not null && _byModel.GetValue(cluster, static _ => new StatesByModel()).Find(cluster, destination) is { } state)
        {
            return ProbeStarting(state);
        }

        // A destination that left the config while its probe was being made: nothing to remember it for.
        return new ProbeAttempt(_time.GetUtcNow());
    }

    /// <summary>Called as a probe request is created for <paramref name="destination"/>, just before it is sent; the attempt times the send.</summary>
    public ProbeAttempt ProbeStarting(DestinationState destination)
    {
        var attempt = new ProbeAttempt(_time.GetUtcNow());
        Volatile.Write(ref _slots.Of(destination).GetOrAdd(ProbePart, 0, static _ => new LatestProbe()).Attempt, attempt);
        return attempt;
    }

    /// <summary>
    /// Called with the raw results of a probe round, before the active policy judges them: a successful probe
    /// that started after a connection-level passive failure ends it (a probe sent before the failure proves
    /// nothing about the restarted process).
    /// </summary>
    public void ProbesCompleted(ClusterState cluster, IReadOnlyList<DestinationProbingResult> results)
    {
        List<DestinationState>? changed = null;
        lock (_gate)
        {
            foreach (var result in results)
            {
                var destination = result.Destination;
                RecordProbe(result);
                if (_ejections.TryGetValue(destination, out var ejections))
                {
                    ejections.GoodProbes = result.Response?.IsSuccessStatusCode == true ? ejections.GoodProbes + 1 : 0;
                    if (ejections.WaitingForProbes && ejections.GoodProbes >= _outliers.SuccessfulProbesToReturn)
                    {
                        ejections.WaitingForProbes = false;
                        var was = DestinationHealthView.Of(destination);
                        SetPassiveHealth(cluster, destination, DestinationHealth.Unknown);
                        var why = $"ejection ended and {ejections.GoodProbes} probes in a row succeeded";
                        Returned(destination, why);
                        Record(cluster, destination, was, why);
                        (changed ??= []).Add(destination);
                        continue;
                    }
                }

                if (result.Response?.IsSuccessStatusCode == true
                    && _reactivations.TryGetValue(destination, out var failure)
                    && failure.ClearedByProbe
                    && LatestAttempt(destination) is { } started
                    && started.Started > failure.Since)
                {
                    CancelReactivation(destination);
                    var before = DestinationHealthView.Of(destination);
                    SetPassiveHealth(cluster, destination, DestinationHealth.Unknown);
                    const string Why = "active health probe succeeded after the connection failure";
                    Returned(destination, Why);
                    Record(cluster, destination, before, Why);
                    (changed ??= []).Add(destination);
                }
            }
        }

        if (changed is not null)
        {
            UpdateAvailable(cluster, changed);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var reactivation in _reactivations.Values)
            {
                reactivation.Dispose();
            }

            _reactivations.Clear();
        }
    }

    private void Reactivate(Reactivation reactivation, ClusterState cluster, DestinationState destination, TimeSpan period)
    {
        lock (_gate)
        {
            // A newer failure replaced this timer, or a probe already cleared the failure.
            if (!_reactivations.TryGetValue(destination, out var current) || current != reactivation)
            {
                return;
            }

            _reactivations.Remove(destination);
            reactivation.Dispose();
            if (reactivation.Repeated
                && cluster.Model.Config.HealthCheck?.Active?.Enabled == true
                && _ejections.TryGetValue(destination, out var ejections)
                && ejections.GoodProbes < _outliers.SuccessfulProbesToReturn)
            {
                // Back only once enough probes in a row have passed (counted in ProbesCompleted).
                ejections.WaitingForProbes = true;
                return;
            }

            var before = DestinationHealthView.Of(destination);
            SetPassiveHealth(cluster, destination, DestinationHealth.Unknown);
            var why = $"passive failure expired after {period}";
            Returned(destination, why);
            Record(cluster, destination, before, why);
        }

        UpdateAvailable(cluster, destination);
    }

    /// <summary>
    /// YARP's new available list (and, through the updater, the cluster's policy snapshot for it, so no request has to
    /// build one). The change is announced, so that only <paramref name="changed"/> is looked at again, not every
    /// destination of the cluster.
    /// </summary>
    private void UpdateAvailable(ClusterState cluster, DestinationState changed) => UpdateAvailable(cluster, new ReadOnlySpan<DestinationState>(in changed));

    /// <inheritdoc cref="UpdateAvailable(ClusterState, DestinationState)"/>
    private void UpdateAvailable(ClusterState cluster, List<DestinationState> changed) => UpdateAvailable(cluster, CollectionsMarshal.AsSpan(changed));

    private void UpdateAvailable(ClusterState cluster, ReadOnlySpan<DestinationState> changed)
    {
        using (_availability?.Announce(cluster, changed))
        {
            _clusterUpdater.UpdateAvailableDestinations(cluster);
        }
    }

    private void CancelReactivation(DestinationState destination)
    {
        if (_reactivations.Remove(destination, out var reactivation))
        {
            reactivation.Dispose();
        }
    }

    private ProbeAttempt? LatestAttempt(DestinationState destination) =>
        _slots.Find(destination)?.Get(ProbePart) is { } latest ? Volatile.Read(ref latest.Attempt) : null;

    private DestinationHealthLog Log(DestinationState destination) => _slots.Of(destination).GetOrAdd(LogPart, 0, static _ => new DestinationHealthLog());

    private void Returned(DestinationState destination, string reason) =>
        Log(destination).AddEvent(new PassiveEvent(_time.GetUtcNow(), PassiveEvent.Returned, reason));

    private void RecordProbe(DestinationProbingResult result)
    {
        var attempt = LatestAttempt(result.Destination);
        var response = result.Response;
        var success = response?.IsSuccessStatusCode == true;
        var error = response is null && result.Exception is { } exception ? TransportFailure.Label(TransportFailure.OfProbe(exception)) : null;
        var latency = attempt?.Elapsed is { } elapsed ? Math.Round(elapsed.TotalMilliseconds, 3) : (double?)null;
        Log(result.Destination).AddProbe(new ProbeRecord(
            attempt?.Started ?? _time.GetUtcNow(),
            success ? ProbeRecord.Success : ProbeRecord.Failure,
            latency,
            response is null ? null : (int)response.StatusCode,
            error));
    }

    private void Record(ClusterState cluster, DestinationState destination, string before, string reason)
    {
        var after = DestinationHealthView.Of(destination);
        if (after == before)
        {
            return;
        }

        var now = _time.GetUtcNow();
        _last[(cluster.ClusterId, destination.DestinationId)] = new HealthChange(now, before, after, reason);
        Log(destination).HealthChanged(after, now);
        _transitions.HealthTransition(cluster.ClusterId, destination.DestinationId, after.ToLowerInvariant());
        HealthChanged?.Invoke(cluster, destination, before, after);
        if (after == DestinationHealthView.Down)
        {
            LogDown(cluster.ClusterId, destination.DestinationId, before, after, reason);
        }
        else
        {
            LogChanged(cluster.ClusterId, destination.DestinationId, before, after, reason);
        }
    }

    [LoggerMessage(EventId = 3001, Level = LogLevel.Warning, Message = "Destination {Cluster}/{Destination} health {From} -> {To}: {Reason}")]
    private partial void LogDown(string cluster, string destination, string from, string to, string reason);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Information, Message = "Destination {Cluster}/{Destination} health {From} -> {To}: {Reason}")]
    private partial void LogChanged(string cluster, string destination, string from, string to, string reason);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Warning, Message = "Destination {Cluster}/{Destination} kept in rotation despite '{Reason}': {Percent} % of the cluster is already ejected by passive checks (Balancer:OutlierDetection:MaxEjectionPercent)")]
    private partial void LogEjectionCapped(string cluster, string destination, string reason, int percent);

    /// <summary>A destination's recent ejections and the good probes since the last one.</summary>
    private sealed class Ejections
    {
        public List<DateTimeOffset> Starts { get; } = [];

        public int GoodProbes { get; set; }

        /// <summary>The ejection time is over; the destination returns at the next good probe that completes the run.</summary>
        public bool WaitingForProbes { get; set; }
    }

    private sealed class Reactivation(DestinationHealthTracker tracker, ClusterState cluster, DestinationState destination, TimeSpan period, DateTimeOffset since, bool clearedByProbe, bool repeated = false) : IDisposable
    {
        private System.Threading.ITimer? _timer;

        public bool Repeated { get; } = repeated;

        public DateTimeOffset Since { get; } = since;

        public bool ClearedByProbe { get; } = clearedByProbe;

        public void Start(TimeProvider time) =>
            _timer = time.CreateTimer(static state => ((Reactivation)state!).Run(), this, period, Timeout.InfiniteTimeSpan);

        public void Dispose() => _timer?.Dispose();

        private void Run() => tracker.Reactivate(this, cluster, destination, period);
    }

    /// <summary>The newest probe attempt of one destination.</summary>
    private sealed class LatestProbe
    {
        public ProbeAttempt? Attempt;
    }

    /// <summary>
    /// A cluster's destinations by their models, so that a probe round finds each destination in constant time. Built
    /// again when YARP's list of the cluster's destinations is a new one, or a model of the list is not found (replaced
    /// by a reload that changed the destination's address); a model of no destination of the list (one that left the
    /// config while its probe was made) costs a walk of the list, no rebuild.
    /// </summary>
    private sealed class StatesByModel
    {
        private Built? _built;

        public DestinationState? Find(ClusterState cluster, DestinationModel model)
        {
            // YARP's list of all the cluster's destinations (their models are read now), else the dictionary itself. Built
            // again from a new list at once, so that no destination a reload removed is held here.
            IReadOnlyCollection<DestinationState> all = cluster.DestinationsState?.AllDestinations ?? [.. cluster.Destinations.Values];
            var built = Volatile.Read(ref _built);
            if (built is not null && ReferenceEquals(built.From, all))
            {
                if (built.Map.TryGetValue(model, out var found) && ReferenceEquals(found.Model, model))
                {
                    return found;
                }

                if (!all.Any(d => ReferenceEquals(d.Model, model)))
                {
                    return null;
                }
            }

            var map = new Dictionary<DestinationModel, DestinationState>(all.Count, ReferenceEqualityComparer.Instance);
            foreach (var destination in all)
            {
                map[destination.Model] = destination;
            }

            Volatile.Write(ref _built, new Built(all, map));
            return map.TryGetValue(model, out var state) && ReferenceEquals(state.Model, model) ? state : null;
        }

        private sealed record Built(IReadOnlyCollection<DestinationState> From, Dictionary<DestinationModel, DestinationState> Map);
    }
}
