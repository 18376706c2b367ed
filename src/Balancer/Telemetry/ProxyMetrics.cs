using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text;
using Balancer.Configuration;
using Balancer.LoadBalancing;
using Balancer.PerDestination;
using Prometheus;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Model;

namespace Balancer.Telemetry;

/// <summary>
/// The per-destination series, under the documented metric names (docs/observability.md). Counters and the histogram are
/// updated by <see cref="ProxyMetricsTransforms"/>; the gauges (up, in flight, policy) and the reload
/// counts are read from YARP's and our own state when Prometheus scrapes, so they cost nothing per request.
/// </summary>
/// <remarks>
/// The families with a series per destination (the gauges, requests, bytes, gRPC calls) are written by
/// <see cref="WriteDestinationSeriesAsync"/> from each destination's own counts and label text, not by prometheus-net:
/// at 3,000 destinations they are about 27,000 lines, and prometheus-net's serializer spent most of a scrape's CPU on them.
/// The cluster-level series and the duration histograms stay prometheus-net's.
/// </remarks>
internal sealed partial class ProxyMetrics
{
    /// <summary>0.5 ms to 30 s: fine steps where a proxy and a healthy backend live, coarse ones for timeouts.</summary>
    internal static readonly double[] DurationBuckets =
        [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    private static readonly string[] DestinationLabels = ["cluster", "destination"];

    private static readonly SlotPart<DestinationMetrics> MetricsPart = new();

    private readonly IProxyStateLookup _proxyState;
    private readonly ConfigReloadTracker _reloads;
    private readonly TimeProvider _time;
    private readonly MetricsOptions _options;
    private readonly ILogger<ProxyMetrics> _logger;
    private readonly ConcurrentDictionary<string, ClusterDurations> _durations = new(StringComparer.Ordinal);
    private readonly DestinationSlots _slots;
    private readonly ConcurrentDictionary<(string Cluster, string Destination), DestinationMetrics> _byId = new();
    private readonly Dictionary<string, string> _policies = [];
    private readonly Dictionary<DestinationState, DestinationMetrics> _scraped = new(ReferenceEqualityComparer.Instance);
    private readonly List<(string Cluster, DestinationState Destination)> _visited = [];
    private readonly List<ScrapedGauge> _gauges = [];
    private readonly Gauge _policy;
    private readonly Counter _configReloads;
    private readonly DestinationEventCounts _events;
    private int _scrapes;
    private bool _destinationsChanged;

    public ProxyMetrics(BalancerMetricsRegistry metrics, IProxyStateLookup proxyState, ConfigReloadTracker reloads, TimeProvider time, Microsoft.Extensions.Options.IOptions<BalancerOptions> options, ILogger<ProxyMetrics> logger,
        DestinationSlots? slots = null)
    {
        _slots = slots ?? new DestinationSlots();
        _proxyState = proxyState;
        _reloads = reloads;
        _time = time;
        _options = options.Value.Metrics;
        _logger = logger;
        var factory = metrics.Factory;
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
        AddScrapedGauge(
            "balancer_destination_up",
            "1 while the destination is eligible for traffic, 0 while it is DOWN.",
            null);
        AddScrapedGauge(
            "balancer_destination_active_requests",
            "Requests in flight to the destination now.",
            _ => static destination => destination.ConcurrentRequestCount);
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
        metrics.AddWriter(WriteDestinationSeriesAsync);
    }

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

    /// <summary>
    /// Adds a gauge with a series per destination, read when Prometheus scrapes (under this object's lock): once per
    /// cluster and scrape <paramref name="value"/> gives what reads each destination's value, so that whatever costs a
    /// lookup per cluster is not paid per destination. Null only for <c>balancer_destination_up</c>.
    /// </summary>
    internal void AddScrapedGauge(string name, string help, Func<ClusterState, Func<DestinationState, long>>? value)
    {
        lock (_policies)
        {
            _gauges.Add(new ScrapedGauge(name, help, Encoding.UTF8.GetBytes(name + "{"), value));
        }
    }

    /// <summary>The metrics of a destination; lock-free after the first call for that destination.</summary>
    public DestinationMetrics For(string clusterId, DestinationState destination)
    {
        var slot = _slots.Of(destination);
        if (slot.Get(MetricsPart) is { } metrics)
        {
            return metrics;
        }

        metrics = _byId.GetOrAdd((clusterId, destination.DestinationId), static (key, self) => self.Create(key.Cluster, key.Destination), this);
        return slot.GetOrAdd(MetricsPart, metrics, static made => made);
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
    /// Brings the cluster-level scrape-time series up to date (policies in force, reload counts, which clusters keep their
    /// durations per cluster) and creates the metrics of new destinations; the per-destination series are written, and
    /// those of departed destinations dropped, by <see cref="Snapshot"/>.
    /// </summary>
    private void Refresh()
    {
        lock (_policies)
        {
            var policies = new Dictionary<string, string>();
            foreach (var cluster in _proxyState.GetClusters())
            {
                var clusterId = cluster.ClusterId;
                policies[clusterId] = PolicyNames.Canonical(cluster.Model.Config.LoadBalancingPolicy);
                var durations = DurationsOf(clusterId);
                if (durations.PerCluster != _options.DurationsPerCluster(cluster.Destinations.Count))
                {
                    SwitchDurations(durations, cluster.Destinations.Count);
                }

                // A new destination's metrics (its duration histogram among them) exist before prometheus-net writes.
                TrackDestinations(cluster);
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
        }

        _configReloads.WithLabels("success").IncTo(_reloads.Successes);
        _configReloads.WithLabels("failure").IncTo(_reloads.Failures);
    }

    /// <summary>
    /// Creates the metrics of destinations that have none yet, off the scrape: called in the background when a config
    /// was applied, so that the first scrape after start-up or after a reload that added thousands of destinations does
    /// not spend its time creating them (about 0.1 ms of CPU each, and what it allocates).
    /// </summary>
    internal void TrackNewDestinations()
    {
        lock (_policies)
        {
            foreach (var cluster in _proxyState.GetClusters())
            {
                TrackDestinations(cluster);
            }
        }
    }

    /// <summary>Creates the metrics of the cluster's destinations that have none yet; the caller holds the lock.</summary>
    private void TrackDestinations(ClusterState cluster)
    {
        foreach (var (_, destination) in cluster.Destinations)
        {
            Tracked(cluster.ClusterId, destination);
        }
    }

    /// <summary>The destination's metrics, created and noted as a change of the config's destinations if it had none; the caller holds the lock.</summary>
    private DestinationMetrics Tracked(string clusterId, DestinationState destination)
    {
        if (!_scraped.TryGetValue(destination, out var metrics))
        {
            metrics = For(clusterId, destination);
            _scraped[destination] = metrics;
            _destinationsChanged = true;
        }

        return metrics;
    }

    /// <summary>
    /// Writes the families with a series per destination of the current config: every destination has its series
    /// from its first scrape (so dashboards see them before the first request), destinations that are gone lose theirs.
    /// </summary>
    private async ValueTask WriteDestinationSeriesAsync(ExpositionWriter writer, CancellationToken cancel)
    {
        var (rows, count, gauges, values) = Snapshot();
        try
        {
            for (var g = 0; g < gauges.Length; g++)
            {
                var gauge = gauges[g];
                await writer.FamilyAsync(gauge.Name, gauge.Help, "gauge", cancel);
                for (var i = 0; i < count; i++)
                {
                    var labels = rows[i].Labels;
                    await writer.EnsureAsync(ExpositionWriter.SampleBytes(gauge.Sample.Length, labels.Length, EndOfLabels.Length), cancel);
                    writer.Sample(gauge.Sample, labels, EndOfLabels, values[(i * gauges.Length) + g]);
                }
            }

            await writer.FamilyAsync(RequestsFamily, RequestsHelp, "counter", cancel);
            foreach (var row in new ArraySegment<DestinationMetrics>(rows, 0, count))
            {
                var samples = row.RequestSamples;
                await writer.EnsureAsync(samples * ExpositionWriter.SampleBytes(RequestsSample.Length, row.Labels.Length, DestinationMetrics.LongestLabelEnd), cancel);
                row.WriteRequests(writer, RequestsSample, samples);
            }

            foreach (var (family, help, sample, request) in ByteFamilies)
            {
                await writer.FamilyAsync(family, help, "counter", cancel);
                foreach (var row in new ArraySegment<DestinationMetrics>(rows, 0, count))
                {
                    await writer.EnsureAsync(ExpositionWriter.SampleBytes(sample.Length, row.Labels.Length, EndOfLabels.Length), cancel);
                    writer.Sample(sample, row.Labels, EndOfLabels, request ? row.RequestBytes : row.ResponseBytes);
                }
            }

            await writer.FamilyAsync(GrpcFamily, GrpcHelp, "counter", cancel);
            foreach (var row in new ArraySegment<DestinationMetrics>(rows, 0, count))
            {
                var samples = row.GrpcSamples;
                await writer.EnsureAsync(samples * ExpositionWriter.SampleBytes(GrpcSample.Length, row.Labels.Length, DestinationMetrics.LongestLabelEnd), cancel);
                row.WriteGrpcCalls(writer, GrpcSample, samples);
            }
        }
        finally
        {
            ArrayPool<long>.Shared.Return(values);
            ArrayPool<DestinationMetrics>.Shared.Return(rows, clearArray: true);
        }
    }

    /// <summary>
    /// The destinations of the current config and their gauges' values now, taken under the lock so that concurrent
    /// scrapes each see one consistent set. Metrics are created for new destinations and forgotten for departed ones;
    /// series are looked up by their labels, and departures searched for, only when the config's destinations changed.
    /// </summary>
    private (DestinationMetrics[] Rows, int Count, ScrapedGauge[] Gauges, long[] Values) Snapshot()
    {
        HashSet<(string, string)>? seen = null;
        DestinationMetrics[] rows;
        var rowCount = 0;
        ScrapedGauge[] gauges;
        long[] values;
        lock (_policies)
        {
            _visited.Clear();
            gauges = [.. _gauges];
            var count = 0;
            foreach (var cluster in _proxyState.GetClusters())
            {
                count += cluster.Destinations.Count;
            }

            // Pooled: a scrape allocates nothing per destination.
            rows = ArrayPool<DestinationMetrics>.Shared.Rent(Math.Max(1, count));
            values = ArrayPool<long>.Shared.Rent(Math.Max(1, count * gauges.Length));
            foreach (var cluster in _proxyState.GetClusters())
            {
                var clusterId = cluster.ClusterId;
                var first = _visited.Count;
                // The dictionary's own enumerator: lock-free, where .Values would take every lock and copy.
                foreach (var (_, destination) in cluster.Destinations)
                {
                    _visited.Add((clusterId, destination));
                    Tracked(clusterId, destination);
                }

                // The destinations found in the available list are marked with this scrape's number, so that telling
                // up from down stays linear in the cluster's size and allocates nothing.
                var mark = ++_scrapes;
                var readers = new Func<DestinationState, long>?[gauges.Length];
                for (var g = 0; g < gauges.Length; g++)
                {
                    readers[g] = gauges[g].Value?.Invoke(cluster);
                }

                foreach (var available in cluster.DestinationsState.AvailableDestinations)
                {
                    if (_scraped.TryGetValue(available, out var known))
                    {
                        known.AvailableMark = mark;
                    }
                }

                for (var v = first; v < _visited.Count; v++)
                {
                    var destination = _visited[v].Destination;
                    var metrics = _scraped[destination];
                    // More destinations than counted a moment ago: a config change landed in between.
                    if (rowCount == rows.Length)
                    {
                        rows = Grow(rows);
                    }

                    var at = rowCount * gauges.Length;
                    if (at + gauges.Length > values.Length)
                    {
                        values = Grow(values);
                    }

                    for (var g = 0; g < gauges.Length; g++)
                    {
                        values[at + g] = readers[g] is { } read ? read(destination) : metrics.AvailableMark == mark ? 1 : 0;
                    }

                    rows[rowCount++] = metrics;
                }
            }

            var changed = _destinationsChanged;
            _destinationsChanged = false;
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

        return (rows, rowCount, gauges, values);
    }

    private static T[] Grow<T>(T[] pooled)
    {
        var larger = ArrayPool<T>.Shared.Rent(pooled.Length * 2);
        pooled.AsSpan().CopyTo(larger);
        ArrayPool<T>.Shared.Return(pooled, clearArray: RuntimeHelpers.IsReferenceOrContainsReferences<T>());
        return larger;
    }

    /// <summary>Removes the prometheus-net series and event counts of destinations that left the config.</summary>
    private void Forget(HashSet<(string Cluster, string Destination)> gone)
    {
        foreach (var (cluster, destination) in gone)
        {
            DestinationDuration?.RemoveLabelled(cluster, destination);
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

    private static readonly byte[] EndOfLabels = "} "u8.ToArray();

    private const string RequestsFamily = "balancer_destination_requests_total";
    private const string RequestsHelp = "Requests proxied to the destination, by HTTP status (code=\"error\" for transport failures). Each retry attempt counts at the destination it went to; health probes are not counted.";
    private static readonly byte[] RequestsSample = Encoding.UTF8.GetBytes(RequestsFamily + "{");

    private static readonly (string Family, string Help, byte[] Sample, bool Request)[] ByteFamilies =
    [
        ("balancer_destination_request_bytes_total", "Request body bytes sent to the destination.", Encoding.UTF8.GetBytes("balancer_destination_request_bytes_total{"), true),
        ("balancer_destination_response_bytes_total", "Response body bytes received from the destination.", Encoding.UTF8.GetBytes("balancer_destination_response_bytes_total{"), false),
    ];

    private const string GrpcFamily = "balancer_destination_grpc_calls_total";
    private const string GrpcHelp = "gRPC calls answered through the destination, by the gRPC status the client was sent (grpc_status=\"OK\" or the name of the error). HTTP status 200 says nothing about a gRPC call's outcome; this does.";
    private static readonly byte[] GrpcSample = Encoding.UTF8.GetBytes(GrpcFamily + "{");

    /// <summary>A gauge with a series per destination; <see cref="Value"/> null for up/down, which the snapshot works out itself.</summary>
    private sealed record ScrapedGauge(string Name, string Help, byte[] Sample, Func<ClusterState, Func<DestinationState, long>>? Value);
}
