using System.Diagnostics;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Health;

/// <summary>
/// Replaces YARP's active health monitor. YARP starts every probe of a cluster at the same instant each
/// interval and keeps them all until the last one ends: with thousands of destinations that is megabytes of
/// requests, tasks and timers alive at once, old enough to be promoted, so the collections they cause stall
/// proxied requests. Here each destination has its own moment in the interval (from a hash of its id, so it
/// keeps it across reloads), at most <see cref="ActiveHealthCheckOptions.MaxConcurrentProbes"/> probes are
/// out at once over all clusters, and each result is judged by the cluster's policy as it arrives.
/// </summary>
/// <remarks>
/// Everything else is as with YARP's monitor: the probe comes from <see cref="IProbingRequestFactory"/>, goes
/// through the cluster's own client with the cluster's timeout, and the cluster's policy decides the health.
/// At start every destination of every cluster is probed at once (through the cap), and
/// <see cref="InitialProbeCompleted"/> turns true when that first round has ended.
/// </remarks>
internal sealed partial class SpreadHealthMonitor : IActiveHealthCheckMonitor, IClusterChangeListener, IDisposable
{
    private const string DefaultPolicy = "ConsecutiveFailures";

    private static readonly ActivitySource Activities = new(Telemetry.TracingServiceCollectionExtensions.YarpActivitySource);

    private readonly ActiveHealthCheckMonitorOptions _defaults;
    private readonly Dictionary<string, IActiveHealthCheckPolicy> _policies;
    private readonly IProbingRequestFactory _requests;
    private readonly TimeProvider _time;
    private readonly ILogger<SpreadHealthMonitor> _logger;
    private readonly int _maxConcurrent;
    private readonly Dictionary<ClusterState, ClusterProbes> _clusters = [];

    // Probes whose turn came while the cap was reached, oldest first; a destination is in it at most once.
    private readonly Queue<PendingProbe> _waiting = new();
    private readonly Lock _gate = new();
    private int _inFlight;
    private int _targetRebuilds;
    private bool _started;
    private bool _disposed;

    public SpreadHealthMonitor(
        IOptions<ActiveHealthCheckMonitorOptions> defaults,
        IEnumerable<IActiveHealthCheckPolicy> policies,
        IProbingRequestFactory requests,
        TimeProvider time,
        ActiveHealthCheckOptions options,
        ILogger<SpreadHealthMonitor> logger)
    {
        _defaults = defaults.Value;
        _policies = new Dictionary<string, IActiveHealthCheckPolicy>(StringComparer.OrdinalIgnoreCase);
        foreach (var policy in policies)
        {
            _policies[policy.Name] = policy;
        }

        _requests = requests;
        _time = time;
        _maxConcurrent = Math.Max(1, options.MaxConcurrentProbes);
        _logger = logger;
    }

    public bool InitialProbeCompleted { get; private set; }

    /// <summary>How many times a cluster's probe targets were rebuilt and re-sorted (for tests to bound the work of a change).</summary>
    internal int TargetRebuilds => Volatile.Read(ref _targetRebuilds);

    /// <summary>Probes whose turn came while the cap was reached (for tests).</summary>
    internal int Waiting
    {
        get
        {
            lock (_gate)
            {
                return _waiting.Count;
            }
        }
    }

    /// <summary>
    /// The first round: every destination of every cluster with active checks, as soon as the cap allows;
    /// then each cluster's spread schedule starts. Called by YARP once the first config is applied.
    /// </summary>
    public Task CheckHealthAsync(IEnumerable<ClusterState> clusters) => Task.Run(async () =>
    {
        try
        {
            var round = new FirstRound();
            var targets = new List<(ClusterProbes Cluster, ProbeTarget Target)>();
            lock (_gate)
            {
                foreach (var cluster in clusters)
                {
                    if (ActiveConfig(cluster) is not null && !_clusters.ContainsKey(cluster))
                    {
                        _clusters[cluster] = new ClusterProbes(this, cluster);
                    }
                }

                foreach (var probes in _clusters.Values)
                {
                    foreach (var target in probes.Refresh())
                    {
                        targets.Add((probes, target));
                    }
                }
            }

            round.Remaining = targets.Count + 1;
            foreach (var (cluster, target) in targets)
            {
                Start(cluster, target, round);
            }

            round.Done();
            await round.Completed.Task;
        }
        catch (Exception e)
        {
            LogFirstRoundFailed(e);
        }
        finally
        {
            InitialProbeCompleted = true;
        }

        lock (_gate)
        {
            _started = true;
            foreach (var probes in _clusters.Values)
            {
                probes.Schedule();
            }
        }
    });

    public void OnClusterAdded(ClusterState cluster) => OnClusterChanged(cluster);

    public void OnClusterChanged(ClusterState cluster)
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            if (ActiveConfig(cluster) is null)
            {
                Remove(cluster);
                return;
            }

            if (!_clusters.TryGetValue(cluster, out var probes))
            {
                probes = new ClusterProbes(this, cluster);
                _clusters[cluster] = probes;
            }

            if (_started)
            {
                probes.Schedule();
            }
        }
    }

    public void OnClusterRemoved(ClusterState cluster)
    {
        lock (_gate)
        {
            Remove(cluster);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            foreach (var probes in _clusters.Values)
            {
                probes.Dispose();
            }

            _clusters.Clear();
            while (_waiting.TryDequeue(out var dropped))
            {
                dropped.Round?.Done();
            }
        }
    }

    private static ActiveHealthCheckConfig? ActiveConfig(ClusterState cluster) =>
        cluster.Model.Config.HealthCheck?.Active is { Enabled: true } active ? active : null;

    /// <summary>A stable pseudo-random 64-bit hash of a destination id (FNV-1a over its characters).</summary>
    private static ulong Hash(string id)
    {
        var hash = 14695981039346656037UL;
        foreach (var c in id)
        {
            hash = (hash ^ c) * 1099511628211UL;
        }

        // FNV's low bits mix poorly for short ids that differ in their last character; fold the high bits in.
        return hash ^ (hash >> 29) ^ (hash >> 47);
    }

    private void Remove(ClusterState cluster)
    {
        if (_clusters.Remove(cluster, out var probes))
        {
            probes.Dispose();
        }
    }

    /// <summary>Sends the probe now if the cap allows, else queues it; a destination already being probed is left alone.</summary>
    private void Start(ClusterProbes cluster, ProbeTarget target, FirstRound? round)
    {
        if (Interlocked.CompareExchange(ref target.Busy, 1, 0) != 0)
        {
            round?.Done();
            return;
        }

        lock (_gate)
        {
            if (_disposed)
            {
                target.Busy = 0;
                round?.Done();
                return;
            }

            if (_inFlight >= _maxConcurrent)
            {
                _waiting.Enqueue(new PendingProbe(cluster, target, round));
                return;
            }

            _inFlight++;
        }

        _ = ProbeAsync(cluster, target, round, yieldFirst: false);
    }

    /// <summary>A probe ended: the oldest waiting one takes its place.</summary>
    private void Finished()
    {
        PendingProbe next;
        lock (_gate)
        {
            if (_disposed || !_waiting.TryDequeue(out next))
            {
                _inFlight--;
                return;
            }
        }

        // Off this thread: a run of probes that complete at once would otherwise start each other ever deeper.
        _ = ProbeAsync(next.Cluster, next.Target, next.Round, yieldFirst: true);
    }

    private async Task ProbeAsync(ClusterProbes probes, ProbeTarget target, FirstRound? round, bool yieldFirst)
    {
        if (yieldFirst)
        {
            await Task.Yield();
        }

        try
        {
            var cluster = probes.Cluster;
            if (!target.Removed && !probes.Disposed && ActiveConfig(cluster) is { } config)
            {
                target.LastStarted = _time.GetTimestamp();
                await ProbeAsync(cluster, target.Destination, config);
            }
        }
        catch (Exception e)
        {
            LogProbeFailed(probes.Cluster.ClusterId, target.Destination.DestinationId, e);
        }
        finally
        {
            Volatile.Write(ref target.Busy, 0);
            round?.Done();
            Finished();
        }
    }

    private async Task ProbeAsync(ClusterState cluster, DestinationState destination, ActiveHealthCheckConfig config)
    {
        using var activity = Activities.StartActivity("proxy.destination_health_check", ActivityKind.Client);
        activity?.AddTag("proxy.cluster_id", cluster.ClusterId);
        activity?.AddTag("proxy.destination_id", destination.DestinationId);

        var model = cluster.Model;
        HttpRequestMessage? request = null;
        HttpResponseMessage? response = null;
        DestinationProbingResult result;
        try
        {
            request = _requests.CreateRequest(model, destination.Model);
        }
        catch (Exception e)
        {
            LogRequestNotCreated(destination.DestinationId, cluster.ClusterId, e);
            activity?.SetStatus(ActivityStatusCode.Error);
            Judge(cluster, config, new DestinationProbingResult(destination, null, e), activity);
            return;
        }

        try
        {
            using (var timeout = new CancellationTokenSource(config.Timeout ?? _defaults.DefaultTimeout, _time))
            {
                try
                {
                    response = await model.HttpClient.SendAsync(request, timeout.Token);
                    LogProbed(destination.DestinationId, cluster.ClusterId, (int)response.StatusCode);
                    result = new DestinationProbingResult(destination, response, null);
                }
                catch (Exception e)
                {
                    LogProbeDidNotAnswer(destination.DestinationId, cluster.ClusterId, e);
                    result = new DestinationProbingResult(destination, null, e);
                }
            }

            activity?.SetStatus(result.Response is null ? ActivityStatusCode.Error : ActivityStatusCode.Ok);
            Judge(cluster, config, result, activity);
        }
        finally
        {
            response?.Dispose();
            request.Dispose();
        }
    }

    /// <summary>The cluster's policy judges one result; it keeps its counts per destination, so one at a time is a round of one.</summary>
    private void Judge(ClusterState cluster, ActiveHealthCheckConfig config, DestinationProbingResult result, Activity? activity)
    {
        try
        {
            var name = string.IsNullOrEmpty(config.Policy) ? DefaultPolicy : config.Policy;
            if (!_policies.TryGetValue(name, out var policy))
            {
                throw new ArgumentException($"No {nameof(IActiveHealthCheckPolicy)} named '{name}' is registered.");
            }

            policy.ProbingCompleted(cluster, [result]);
        }
        catch (Exception e)
        {
            LogPolicyFailed(cluster.ClusterId, e);
            activity?.SetStatus(ActivityStatusCode.Error);
        }
    }

    [LoggerMessage(EventId = 3011, Level = LogLevel.Error, Message = "The first round of active health probes failed")]
    private partial void LogFirstRoundFailed(Exception exception);

    [LoggerMessage(EventId = 3012, Level = LogLevel.Error, Message = "Active health probe of destination {Destination} of cluster {Cluster} failed")]
    private partial void LogProbeFailed(string cluster, string destination, Exception exception);

    [LoggerMessage(EventId = 3013, Level = LogLevel.Error, Message = "Could not build the active health probe of destination {Destination} of cluster {Cluster}")]
    private partial void LogRequestNotCreated(string destination, string cluster, Exception exception);

    [LoggerMessage(EventId = 3014, Level = LogLevel.Error, Message = "The active health policy of cluster {Cluster} failed to judge a probe")]
    private partial void LogPolicyFailed(string cluster, Exception exception);

    [LoggerMessage(EventId = 3015, Level = LogLevel.Debug, Message = "Active health probe of destination {Destination} of cluster {Cluster} answered {Status}")]
    private partial void LogProbed(string destination, string cluster, int status);

    [LoggerMessage(EventId = 3016, Level = LogLevel.Debug, Message = "Active health probe of destination {Destination} of cluster {Cluster} got no answer")]
    private partial void LogProbeDidNotAnswer(string destination, string cluster, Exception exception);

    private readonly record struct PendingProbe(ClusterProbes Cluster, ProbeTarget Target, FirstRound? Round);

    /// <summary>Counts the probes of the first round down to zero.</summary>
    private sealed class FirstRound
    {
        private int _remaining;

        public TaskCompletionSource Completed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Remaining
        {
            set => _remaining = value;
        }

        public void Done()
        {
            if (Interlocked.Decrement(ref _remaining) == 0)
            {
                Completed.TrySetResult();
            }
        }
    }

    /// <summary>What is kept of a destination between its probes.</summary>
    private sealed class ProbeTarget(DestinationState destination, ulong hash)
    {
        public DestinationState Destination { get; } = destination;

        public ulong Hash { get; } = hash;

        /// <summary>Its moment in the interval, in ticks from the interval's start.</summary>
        public long Phase { get; set; }

        /// <summary>When its last probe was sent (a <see cref="TimeProvider"/> timestamp); long.MinValue before the first.</summary>
        public long LastStarted { get; set; } = long.MinValue;

        /// <summary>No longer in its cluster: a probe still waiting is dropped.</summary>
        public bool Removed { get; set; }

        // 1 while a probe is on its way or waiting for its turn.
        public int Busy;
    }

    /// <summary>
    /// One cluster's schedule: its destinations ordered by their moment in the interval, and a timer that
    /// wakes at the next one. The position in the interval runs on the monotonic clock from a start taken from
    /// the wall clock, so a destination keeps its moment whatever was reloaded, and a clock step does not
    /// bunch the probes.
    /// </summary>
    private sealed class ClusterProbes : IDisposable
    {
        private readonly SpreadHealthMonitor _monitor;
        private readonly List<ProbeTarget> _due = [];
        private ProbeTarget[] _targets = [];
        private IReadOnlyList<DestinationState>? _builtFrom;
        private ITimer? _timer;
        private long _interval;
        private long _originTimestamp;
        private long _originPosition;

        // Position (ticks since the start of the interval the origin falls in) up to which every probe was started.
        private long _done;

        public ClusterProbes(SpreadHealthMonitor monitor, ClusterState cluster)
        {
            _monitor = monitor;
            Cluster = cluster;
        }

        public ClusterState Cluster { get; }

        public bool Disposed { get; private set; }

        private TimeProvider Time => _monitor._time;

        /// <summary>Brings the destinations and the interval up to date; returns the destinations.</summary>
        public IReadOnlyList<ProbeTarget> Refresh()
        {
            lock (this)
            {
                Update();
                return _targets;
            }
        }

        /// <summary>Starts (or restarts, after a change) the timer at the next destination's moment.</summary>
        public void Schedule()
        {
            lock (this)
            {
                if (Disposed)
                {
                    return;
                }

                Update();
                _timer ??= Time.CreateTimer(static state => ((ClusterProbes)state!).Tick(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
                Arm(Position());
            }
        }

        public void Dispose()
        {
            lock (this)
            {
                Disposed = true;
                _timer?.Dispose();
                _timer = null;
                foreach (var target in _targets)
                {
                    target.Removed = true;
                }
            }
        }

        private void Tick()
        {
            ProbeTarget[] due;
            lock (this)
            {
                if (Disposed || ActiveConfig(Cluster) is null)
                {
                    return;
                }

                Update();
                var now = Position();
                Collect(_done, now);
                _done = now;
                Arm(now);
                // Started outside the lock (starting takes the monitor's); usually one destination.
                due = _due.Count == 0 ? [] : [.. _due];
                _due.Clear();
            }

            foreach (var target in due)
            {
                _monitor.Start(this, target, round: null);
            }
        }

        private long Position() => _originPosition + Time.GetElapsedTime(_originTimestamp).Ticks;

        private void Update()
        {
            var config = ActiveConfig(Cluster);
            var interval = (config?.Interval ?? _monitor._defaults.DefaultInterval).Ticks;
            var destinations = Cluster.DestinationsState.AllDestinations;
            if (interval != _interval)
            {
                _interval = Math.Max(1, interval);
                _originTimestamp = Time.GetTimestamp();
                _originPosition = Time.GetUtcNow().UtcTicks % _interval;
                _done = _originPosition;
                foreach (var target in _targets)
                {
                    target.Phase = (long)(target.Hash % (ulong)_interval);
                }

                Array.Sort(_targets, static (a, b) => a.Phase.CompareTo(b.Phase));
            }

            if (!ReferenceEquals(destinations, _builtFrom))
            {
                if (SameDestinations(destinations, _builtFrom))
                {
                    // A reload that changed only the destinations' config (weights, metadata): YARP hands over a new list
                    // of the same states, and the targets sorted for it still hold. Rebuilding them re-sorted 10,000
                    // targets under the locks that probe completions and timer ticks wait on.
                    _builtFrom = destinations;
                }
                else
                {
                    Rebuild(destinations);
                }
            }
        }

        private static bool SameDestinations(IReadOnlyList<DestinationState> destinations, IReadOnlyList<DestinationState>? builtFrom)
        {
            if (builtFrom is null || builtFrom.Count != destinations.Count)
            {
                return false;
            }

            for (var i = 0; i < destinations.Count; i++)
            {
                if (!ReferenceEquals(destinations[i], builtFrom[i]))
                {
                    return false;
                }
            }

            return true;
        }

        private void Rebuild(IReadOnlyList<DestinationState> destinations)
        {
            Interlocked.Increment(ref _monitor._targetRebuilds);
            var kept = new Dictionary<DestinationState, ProbeTarget>(_targets.Length, ReferenceEqualityComparer.Instance);
            foreach (var target in _targets)
            {
                kept[target.Destination] = target;
            }

            var targets = new ProbeTarget[destinations.Count];
            for (var i = 0; i < targets.Length; i++)
            {
                var destination = destinations[i];
                if (!kept.Remove(destination, out var target))
                {
                    target = new ProbeTarget(destination, Hash(destination.DestinationId));
                    target.Phase = (long)(target.Hash % (ulong)_interval);
                }

                targets[i] = target;
            }

            foreach (var gone in kept.Values)
            {
                gone.Removed = true;
            }

            Array.Sort(targets, static (a, b) => a.Phase.CompareTo(b.Phase));
            _targets = targets;
            _builtFrom = destinations;
        }

        /// <summary>
        /// The destinations whose moment lies in (from, to]: one probe each, skipping any probed less than half an
        /// interval ago (by the first round, or before a change of interval moved the moments).
        /// </summary>
        private void Collect(long from, long to)
        {
            if (to <= from || _targets.Length == 0)
            {
                return;
            }

            if (to - from >= _interval)
            {
                AddDue(0, _targets.Length);
                return;
            }

            var start = from % _interval;
            var end = to % _interval;
            if (from / _interval == to / _interval)
            {
                AddDue(After(start), After(end));
            }
            else
            {
                AddDue(After(start), _targets.Length);
                AddDue(0, After(end));
            }
        }

        private void AddDue(int first, int last)
        {
            var recent = _interval / 2;
            for (var i = first; i < last; i++)
            {
                var target = _targets[i];
                if (target.LastStarted == long.MinValue || Time.GetElapsedTime(target.LastStarted).Ticks >= recent)
                {
                    _due.Add(target);
                }
            }
        }

        /// <summary>Index of the first destination whose moment is after <paramref name="position"/> (within the interval).</summary>
        private int After(long position)
        {
            int low = 0, high = _targets.Length;
            while (low < high)
            {
                var middle = (low + high) >>> 1;
                if (_targets[middle].Phase <= position)
                {
                    low = middle + 1;
                }
                else
                {
                    high = middle;
                }
            }

            return low;
        }

        /// <summary>Sets the timer to the next destination's moment after <paramref name="now"/>, or a whole interval when there is none.</summary>
        private void Arm(long now)
        {
            var position = now % _interval;
            long wait;
            if (_targets.Length == 0)
            {
                wait = _interval;
            }
            else
            {
                var next = After(position);
                wait = next < _targets.Length ? _targets[next].Phase - position : _interval - position + _targets[0].Phase;
            }

            _timer?.Change(TimeSpan.FromTicks(Math.Max(1, wait)), Timeout.InfiniteTimeSpan);
        }
    }
}
