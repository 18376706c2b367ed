using Balancer.Configuration;
using Balancer.Health;
using Balancer.LoadBalancing;
using Balancer.Telemetry;
using Yarp.ReverseProxy;

namespace Balancer.Management;

/// <summary>Builds the <c>GET /status</c> document from YARP's live state and our own statistics.</summary>
internal sealed class StatusApi(IProxyStateLookup proxyState, ConfigReloadTracker reloads, ProxyMetrics metrics, IDestinationHealthHistory history, Tls.CertificateStore certificates, TimeProvider time, RateLimiting.ClientLimits limits, Runtime.DestinationRuntimeViews runtime)
{
    public StatusDocument Snapshot() => Snapshot(StatusQuery.All);

    /// <summary>The document with, per cluster, only the destinations <paramref name="query"/> selects.</summary>
    public StatusDocument Snapshot(StatusQuery query)
    {
        var now = metrics.CurrentSecond();
        var clusters = new List<ClusterStatus>();
        foreach (var cluster in proxyState.GetClusters())
        {
            var config = cluster.Model.Config;
            // Filtered and paged before the statistics are read: a page of a large cluster costs a page.
            var matching = new List<(Yarp.ReverseProxy.Model.DestinationState Destination, string Health, Runtime.DestinationRuntime State)>();
            foreach (var destination in cluster.Destinations.Values)
            {
                var health = DestinationHealthView.Of(destination);
                var state = runtime.Of(cluster, destination);
                if (query.Matches(destination.DestinationId, destination.Model.Config.Address, health, state.State))
                {
                    matching.Add((destination, health, state));
                }
            }

            matching.Sort(static (a, b) => string.CompareOrdinal(a.Destination.DestinationId, b.Destination.DestinationId));
            var destinations = new List<DestinationStatus>();
            foreach (var (destination, health, state) in matching.Skip(query.Offset).Take(query.Limit ?? int.MaxValue))
            {
                var stats = metrics.For(cluster.ClusterId, destination);
                var latency = stats.Window.LatencyMilliseconds(now);
                var explained = history.Explain(destination);
                destinations.Add(new DestinationStatus(
                    destination.DestinationId,
                    destination.Model.Config.Address,
                    health,
                    DestinationWeight.Of(destination.Model.Config),
                    destination.ConcurrentRequestCount,
                    stats.Total,
                    Math.Round(stats.Window.RequestsPerSecond(now), 2),
                    latency is { } l ? Math.Round(l.P50, 3) : null,
                    latency is { } m ? Math.Round(m.P99, 3) : null,
                    history.LastChange(cluster.ClusterId, destination.DestinationId),
                    state.State,
                    state.WeightOverride,
                    state.EffectiveWeight,
                    state.SlowStart)
                {
                    RequestRateHistory = stats.Window.RequestsPerSecondHistory(now),
                    Probes = explained.Probes,
                    PassiveEvents = explained.PassiveEvents,
                    FlapsLast10Minutes = explained.Flaps,
                });
            }

            clusters.Add(new ClusterStatus(cluster.ClusterId, PolicyNames.Canonical(config.LoadBalancingPolicy), destinations)
            {
                RateLimited = limits.LimitedIn(cluster.ClusterId),
                DestinationCount = cluster.Destinations.Count,
                Matching = matching.Count,
                LatencyHistogram = metrics.DurationsPerCluster(cluster.ClusterId) ? "cluster" : "destination",
            });
        }

        clusters.Sort(static (a, b) => string.CompareOrdinal(a.Id, b.Id));
        var last = reloads.Last;
        return new StatusDocument(clusters, last is null ? null : new ReloadStatus(last.Time, last.Success ? "success" : "failure", last.Error))
        {
            Certificates = [.. certificates.Snapshot().Select(c => CertificateStatus.Of(c, time.GetUtcNow()))],
        };
    }
}

/// <summary>The <c>GET /status</c> document.</summary>
public sealed record StatusDocument(IReadOnlyList<ClusterStatus> Clusters, ReloadStatus? LastReload)
{
    /// <summary>The certificates of the https:// listeners; empty without TLS.</summary>
    public IReadOnlyList<CertificateStatus> Certificates { get; init; } = [];
}

/// <summary>
/// A certificate by name (<c>default</c> or the SNI host): the one serving (host, serial, expiry) and, while
/// its replacement files are rejected, why.
/// </summary>
public sealed record CertificateStatus(
    string Name,
    string CertificatePath,
    string KeyPath,
    string? Host,
    IReadOnlyList<string> DnsNames,
    string? Serial,
    DateTimeOffset? NotAfter,
    double? DaysToExpiry,
    string? Error)
{
    internal static CertificateStatus Of(Tls.CertificateState state, DateTimeOffset now) => new(
        state.Source.Name,
        state.Source.CertificatePath,
        state.Source.KeyPath,
        state.Current?.Host,
        state.Current?.DnsNames ?? [],
        state.Current?.Serial,
        state.Current?.NotAfter,
        state.Current is { } c ? Math.Round((c.NotAfter - now).TotalDays, 1) : null,
        state.Error);
}

/// <summary>A cluster and the policy in force.</summary>
public sealed record ClusterStatus(string Id, string Policy, IReadOnlyList<DestinationStatus> Destinations)
{
    /// <summary>Requests answered 429 by the per-client limits since start-up.</summary>
    public long RateLimited { get; init; }

    /// <summary>Destinations in the cluster's config, whatever the filter.</summary>
    public int DestinationCount { get; init; }

    /// <summary>Destinations the filter (<c>state</c>, <c>name</c>) selects, before <c>offset</c> and <c>limit</c>.</summary>
    public int Matching { get; init; }

    /// <summary>
    /// Where <c>/metrics</c> keeps the cluster's request durations: <c>destination</c> (a histogram per destination)
    /// or <c>cluster</c> (one for the cluster; see <c>Balancer:Metrics:PerDestinationHistograms</c>).
    /// </summary>
    public string LatencyHistogram { get; init; } = "destination";
}

/// <summary>
/// A destination: health (<c>Up</c>/<c>Down</c>/<c>Unknown</c>), weight, requests in flight, requests proxied
/// since start-up (every attempt, as in <c>balancer_destination_requests_total</c>), requests per second over
/// the last 10 s, latency to response headers over the last minute, its last health change, and its runtime
/// state: <c>Active</c>/<c>Draining</c>/<c>Drained</c>/<c>Maintenance</c>, the operator's weight override, the
/// effective weight (override or file weight, times the slow-start fraction) and the slow-start ramp in progress.
/// Then what explains its health: its last probes, its passive events, how often it flapped between <c>Up</c> and
/// <c>Down</c> in the last 10 minutes; and its requests in each second of the last minute.
/// </summary>
public sealed record DestinationStatus(
    string Id,
    string Address,
    string Health,
    int Weight,
    int InFlight,
    long Requests,
    double RequestsPerSecond,
    double? LatencyP50Ms,
    double? LatencyP99Ms,
    HealthChange? HealthChange,
    string State,
    int? WeightOverride,
    double EffectiveWeight,
    Runtime.SlowStartStatus? SlowStart)
{
    /// <summary>Requests finished in each of the last 60 whole seconds, oldest first.</summary>
    public IReadOnlyList<long> RequestRateHistory { get; init; } = [];

    /// <summary>The last 20 active health probes, newest first.</summary>
    public IReadOnlyList<ProbeRecord> Probes { get; init; } = [];

    /// <summary>The last 20 passive health events (ejected, kept in rotation, returned), newest first.</summary>
    public IReadOnlyList<PassiveEvent> PassiveEvents { get; init; } = [];

    /// <summary>Changes between <c>Up</c> and <c>Down</c> (either way) in the last 10 minutes.</summary>
    public int FlapsLast10Minutes { get; init; }
}

/// <summary>The last config reload: when, <c>success</c> or <c>failure</c>, and why it was rejected.</summary>
public sealed record ReloadStatus(DateTimeOffset Time, string Result, string? Error);
