using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Balancer.Configuration;
using Balancer.LoadBalancing;
using Prometheus;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Model;

namespace Balancer.Telemetry;

/// <summary>
/// The per-destination series, under the documented metric names (docs/observability.md). Counters and the histogram are
/// updated by <see cref="ProxyMetricsTransforms"/>; the gauges (up, in flight, policy) and the reload
/// counts are read from YARP's and our own state when Prometheus scrapes, so they cost nothing per request.
/// </summary>
internal sealed partial class ProxyMetrics
{
    /// <summary>0.5 ms to 30 s: fine steps where a proxy and a healthy backend live, coarse ones for timeouts.</summary>
    internal static readonly double[] DurationBuckets =
        [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    private static readonly string[] DestinationLabels = ["cluster", "destination"];

    private readonly IProxyStateLookup _proxyState;
    private readonly ConfigReloadTracker _reloads;
    private readonly TimeProvider _time;
    private readonly MetricsOptions _options;
    private readonly ILogger<ProxyMetrics> _logger;
    private readonly ConcurrentDictionary<string, ClusterDurations> _durations = new(StringComparer.Ordinal);
    private readonly ConditionalWeakTable<DestinationState, DestinationMetrics> _byState = new();
    private readonly ConcurrentDictionary<(string Cluster, string Destination), DestinationMetrics> _byId = new();
    private readonly Dictionary<string, string> _policies = [];
    private readonly Dictionary<DestinationState, ScrapedGauges> _scraped = new(ReferenceEqualityComparer.Instance);
    private readonly List<(string Cluster, DestinationState Destination)> _visited = [];
    private readonly Gauge _up;
    private readonly Gauge _active;
    private readonly Gauge _policy;
    private readonly Counter _configReloads;
    private readonly DestinationEventCounts _events;

    public ProxyMetrics(BalancerMetricsRegistry metrics, IProxyStateLookup proxyState, ConfigReloadTracker reloads, TimeProvider time, Microsoft.Extensions.Options.IOptions<BalancerOptions> options, ILogger<ProxyMetrics> logger)
    {
        _proxyState = proxyState;
        _reloads = reloads;
        _time = time;
        _options = options.Value.Metrics;
        _logger = logger;
        var factory = metrics.Factory;
        Requests = factory.CreateCounter(
            "balancer_destination_requests_total",
            "Requests proxied to the destination, by HTTP status (code=\"error\" for transport failures). Each retry attempt counts at the destination it went to; health probes are not counted.",
            new CounterConfiguration { LabelNames = ["cluster", "destination", "code"] });
        // Only the families a cluster can use: both unless the choice is fixed for every cluster.
        DestinationDuration = _options.PerDestinationHistograms is false
            ? null
            : factory.CreateHistogram(
                "balancer_destination_request_duration_seconds",
                "Time from sending the request to the destination until its response headers arrived (until the failure, for transport errors).",
                new HistogramConfiguration { LabelNames = DestinationLabels, Buckets = DurationBuckets });
        ClusterDuration = _options.PerDestinationHistograms is true
            ? null
            : factory.CreateHistogram(
                "balancer_cluster_request_duration_seconds",
                "Time from sending the request to a destination of the cluster until its response headers arrived (until the failure, for transport errors). Kept per cluster instead of per destination in clusters of more than Balancer:Metrics:PerDestinationHistogramsMaxDestinations destinations, or all when Balancer:Metrics:PerDestinationHistograms is false.",
                new HistogramConfiguration { LabelNames = ["cluster"], Buckets = DurationBuckets });
        RequestBytes = factory.CreateCounter(
            "balancer_destination_request_bytes_total",
            "Request body bytes sent to the destination.",
            new CounterConfiguration { LabelNames = DestinationLabels });
        ResponseBytes = factory.CreateCounter(
            "balancer_destination_response_bytes_total",
            "Response body bytes received from the destination.",
            new CounterConfiguration { LabelNames = DestinationLabels });
        GrpcCalls = factory.CreateCounter(
            "balancer_destination_grpc_calls_total",
            "gRPC calls answered through the destination, by the gRPC status the client was sent (grpc_status=\"OK\" or the name of the error). HTTP status 200 says nothing about a gRPC call's outcome; this does.",
            new CounterConfiguration { LabelNames = ["cluster", "destination", "grpc_status"] });
        _up = factory.CreateGauge(
            "balancer_destination_up",
            "1 while the destination is eligible for traffic, 0 while it is DOWN.",
            new GaugeConfiguration { LabelNames = DestinationLabels });
        _active = factory.CreateGauge(
            "balancer_destination_active_requests",
            "Requests in flight to the destination now.",
            new GaugeConfiguration { LabelNames = DestinationLabels });
        _policy = factory.CreateGauge(
            "balancer_cluster_policy_info",
            "1 for the load-balancing policy in force in the cluster.",
            new GaugeConfiguration { LabelNames = ["cluster", "policy"] });
        _configReloads = factory.CreateCounter(
            "balancer_config_reloads_total",
            "Config file reloads, by result: success (applied) or failure (rejected; the previous config kept serving).",
            new CounterConfiguration { LabelNames = ["result"] });
        _configReloads.WithLabels("success");
        _configReloads.WithLabels("failure");
        _events = metrics.Events;
        metrics.Registry.AddBeforeCollectCallback(Refresh);
    }

    internal Counter Requests { get; }

    /// <summary>The request duration histogram labelled by cluster and destination; null when no cluster keeps one.</summary>
    internal Histogram? DestinationDuration { get; }

    /// <summary>The request duration histogram labelled by cluster alone; null when every cluster keeps them per destination.</summary>
    internal Histogram? ClusterDuration { get; }

    /// <summary>Where the durations of the cluster's requests go; decided by its size when first asked, and at every scrape.</summary>
    internal ClusterDurations DurationsOf(string clusterId)
    {
        if (_durations.TryGetValue(clusterId, out var durations))
        {
            return durations;
        }

        // Once per cluster, so that its choice is logged once.
        lock (_durations)
        {
            if (_durations.TryGetValue(clusterId, out durations))
            {
                return durations;
            }

            durations = new ClusterDurations(clusterId);
            var size = _proxyState.TryGetCluster(clusterId, out var cluster) ? cluster.Destinations.Count : 0;
            if (_options.DurationsPerCluster(size))
            {
                durations.Shared = ClusterDuration!.WithLabels(clusterId);
                if (_options.PerDestinationHistograms is null)
                {
                    LogDurationsPerCluster(clusterId, size, _options.PerDestinationHistogramsMaxDestinations);
                }
            }

            _durations[clusterId] = durations;
            return durations;
        }
    }

    /// <summary>Whether the cluster's request durations are kept per cluster rather than per destination, for <c>/status</c>.</summary>
    public bool DurationsPerCluster(string clusterId) => DurationsOf(clusterId).PerCluster;

    internal Counter RequestBytes { get; }

    internal Counter ResponseBytes { get; }

    internal Counter GrpcCalls { get; }

    /// <summary>The metrics of a destination; lock-free after the first call for that destination.</summary>
    public DestinationMetrics For(string clusterId, DestinationState destination)
    {
        if (_byState.TryGetValue(destination, out var metrics))
        {
            return metrics;
        }

        metrics = _byId.GetOrAdd((clusterId, destination.DestinationId), static (key, self) => self.Create(key.Cluster, key.Destination), this);
        return _byState.GetValue(destination, _ => metrics);
    }

    private DestinationMetrics Create(string cluster, string destination)
    {
        _events.Add(cluster, destination);
        return new DestinationMetrics(this, cluster, destination);
    }

    /// <summary>The metrics of a destination if any were recorded or exported, for the status API.</summary>
    public DestinationMetrics? Find(string clusterId, string destinationId) =>
        _byId.TryGetValue((clusterId, destinationId), out var metrics) ? metrics : null;

    /// <summary>Whole seconds of the monotonic clock, the unit of <see cref="RollingWindow"/>.</summary>
    public long CurrentSecond() => _time.GetTimestamp() / _time.TimestampFrequency;

    /// <summary>
    /// Brings the scrape-time series up to date: every destination of the current config has its series
    /// (so dashboards see them before the first request), destinations and policies that are gone lose theirs.
    /// </summary>
    /// <remarks>
    /// Each destination's gauges are kept by reference to its state, so a scrape of thousands of destinations
    /// sets values; series are looked up by their labels, and departures searched for, only when the config's
    /// destinations changed.
    /// </remarks>
    private void Refresh()
    {
        HashSet<(string, string)>? seen = null;
        lock (_policies)
        {
            _visited.Clear();
            var changed = false;
            var policies = new Dictionary<string, string>();
            foreach (var cluster in _proxyState.GetClusters())
            {
                var clusterId = cluster.ClusterId;
                var policy = PolicyNames.Canonical(cluster.Model.Config.LoadBalancingPolicy);
                policies[clusterId] = policy;
                var durations = DurationsOf(clusterId);
                if (durations.PerCluster != _options.DurationsPerCluster(cluster.Destinations.Count))
                {
                    SwitchDurations(durations, cluster.Destinations.Count);
                }

                // A set, not a scan of the list per destination: a scrape of thousands of destinations stays linear.
                var available = new HashSet<DestinationState>(cluster.DestinationsState.AvailableDestinations, ReferenceEqualityComparer.Instance);
                foreach (var destination in cluster.Destinations.Values)
                {
                    _visited.Add((clusterId, destination));
                    if (!_scraped.TryGetValue(destination, out var gauges))
                    {
                        For(clusterId, destination);
                        gauges = new ScrapedGauges(_up.WithLabels(clusterId, destination.DestinationId), _active.WithLabels(clusterId, destination.DestinationId));
                        _scraped[destination] = gauges;
                        changed = true;
                    }

                    gauges.Up.Set(available.Contains(destination) ? 1 : 0);
                    gauges.Active.Set(destination.ConcurrentRequestCount);
                }
            }

            foreach (var (clusterId, policy) in _policies)
            {
                if (!policies.TryGetValue(clusterId, out var current) || !string.Equals(current, policy, StringComparison.Ordinal))
                {
                    _policy.RemoveLabelled(clusterId, policy);
                }

                if (current is null && _durations.TryRemove(clusterId, out var durations) && durations.PerCluster)
                {
                    ClusterDuration!.RemoveLabelled(clusterId);
                }
            }

            _policies.Clear();
            foreach (var (clusterId, policy) in policies)
            {
                _policy.WithLabels(clusterId, policy).Set(1);
                _policies[clusterId] = policy;
            }

            if (changed || _visited.Count != _scraped.Count || _visited.Count != _byId.Count)
            {
                seen = [];
                var current = new HashSet<DestinationState>(ReferenceEqualityComparer.Instance);
                foreach (var (clusterId, destination) in _visited)
                {
                    seen.Add((clusterId, destination.DestinationId));
                    current.Add(destination);
                }

                foreach (var stale in _scraped.Keys.Where(d => !current.Contains(d)).ToList())
                {
                    _scraped.Remove(stale);
                }
            }
        }

        if (seen is not null)
        {
            var gone = new HashSet<(string, string)>();
            foreach (var key in _byId.Keys)
            {
                if (!seen.Contains(key) && _byId.TryRemove(key, out _))
                {
                    gone.Add(key);
                }
            }

            if (gone.Count > 0)
            {
                Forget(gone);
            }
        }

        _configReloads.WithLabels("success").IncTo(_reloads.Successes);
        _configReloads.WithLabels("failure").IncTo(_reloads.Failures);
    }

    /// <summary>Removes the series of destinations that left the config, in one pass over each labelled counter.</summary>
    private void Forget(HashSet<(string Cluster, string Destination)> gone)
    {
        foreach (var counter in new[] { Requests, GrpcCalls })
        {
            foreach (var labels in counter.GetAllLabelValues())
            {
                if (gone.Contains((labels[0], labels[1])))
                {
                    counter.RemoveLabelled(labels);
                }
            }
        }

        foreach (var (cluster, destination) in gone)
        {
            DestinationDuration?.RemoveLabelled(cluster, destination);

            RequestBytes.RemoveLabelled(cluster, destination);
            ResponseBytes.RemoveLabelled(cluster, destination);
            _up.RemoveLabelled(cluster, destination);
            _active.RemoveLabelled(cluster, destination);
            _events.Remove(cluster, destination);
        }
    }

    /// <summary>
    /// Moves a cluster whose size crossed <see cref="MetricsOptions.PerDestinationHistogramsMaxDestinations"/> to the
    /// histogram its size calls for: the per-destination series go (or come back at 0) with the cluster's one.
    /// </summary>
    private void SwitchDurations(ClusterDurations durations, int size)
    {
        var id = durations.Cluster;
        lock (durations)
        {
            if (durations.PerCluster)
            {
                foreach (var (key, metrics) in _byId)
                {
                    if (string.Equals(key.Cluster, id, StringComparison.Ordinal))
                    {
                        metrics.KeepOwnDuration(DestinationDuration!.WithLabels(id, key.Destination));
                    }
                }

                durations.Shared = null;
                ClusterDuration!.RemoveLabelled(id);
                LogDurationsPerDestination(id, size, _options.PerDestinationHistogramsMaxDestinations);
            }
            else
            {
                durations.Shared = ClusterDuration!.WithLabels(id);
                foreach (var (key, metrics) in _byId)
                {
                    if (string.Equals(key.Cluster, id, StringComparison.Ordinal))
                    {
                        metrics.KeepOwnDuration(null);
                    }
                }

                // Every series of the cluster, also of a destination whose metrics were being created meanwhile.
                foreach (var labels in DestinationDuration!.GetAllLabelValues().Where(l => string.Equals(l[0], id, StringComparison.Ordinal)).ToList())
                {
                    DestinationDuration.RemoveLabelled(labels);
                }

                LogDurationsPerCluster(id, size, _options.PerDestinationHistogramsMaxDestinations);
            }
        }
    }

    [LoggerMessage(EventId = 1401, Level = LogLevel.Information, Message = "Cluster {Cluster} has {Count} destinations, more than Balancer:Metrics:PerDestinationHistogramsMaxDestinations ({Max}): its request durations are kept in one histogram for the cluster (balancer_cluster_request_duration_seconds) instead of one per destination")]
    private partial void LogDurationsPerCluster(string cluster, int count, int max);

    [LoggerMessage(EventId = 1402, Level = LogLevel.Information, Message = "Cluster {Cluster} has {Count} destinations, at most Balancer:Metrics:PerDestinationHistogramsMaxDestinations ({Max}): its request durations are kept per destination again (balancer_destination_request_duration_seconds)")]
    private partial void LogDurationsPerDestination(string cluster, int count, int max);

    /// <summary>A destination's gauges that are set when Prometheus scrapes.</summary>
    private sealed record ScrapedGauges(Gauge.Child Up, Gauge.Child Active);
}
