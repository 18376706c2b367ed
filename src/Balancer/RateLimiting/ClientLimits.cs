using System.Collections.Concurrent;
using System.Net;
using System.Runtime.CompilerServices;
using System.Threading.RateLimiting;
using Balancer.Configuration;
using Balancer.Telemetry;
using Microsoft.Extensions.Options;
using Prometheus;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Model;

namespace Balancer.RateLimiting;

/// <summary>
/// The per-client request rate and concurrency limits, each a <see cref="PartitionedRateLimiter{TResource}"/>
/// keyed by the limits in force and the client IP. Partitions of clients gone quiet are disposed by the
/// partitioned limiter itself (ten seconds after a bucket is full again, or after the last request ended),
/// so memory follows the clients active now, not all that ever came.
/// </summary>
/// <remarks>
/// Each partitioned limiter runs a timer ten times a second for as long as it exists, which wakes a thread-pool
/// thread every time; so both are made when the first request under a limit arrives, never in a balancer that
/// limits nothing.
/// </remarks>
internal sealed class ClientLimits : IAsyncDisposable
{
    /// <summary>The <c>limit</c> label of <c>balancer_rate_limited_total</c>.</summary>
    public const string RateLabel = "rate";

    public const string ConcurrencyLabel = "concurrency";

    private readonly TimeProvider _time;
    private readonly IProxyStateLookup _proxyState;
    private readonly Lock _gate = new();
    private PartitionedRateLimiter<ClientKey>? _rate;
    private PartitionedRateLimiter<ClientKey>? _concurrency;
    private bool _disposed;
    private readonly ConditionalWeakTable<RouteModel, RouteLimits> _routes = [];
    private readonly ConcurrentDictionary<string, ClusterCounters> _clusters = new(StringComparer.Ordinal);
    private readonly Counter _limited;
    private readonly IDisposable? _subscription;
    private volatile ClientLimitSettings _defaults;
    private int _rateBuckets;

    public ClientLimits(IOptionsMonitor<BalancerOptions> options, BalancerMetricsRegistry metrics, IProxyStateLookup proxyState, TimeProvider time)
    {
        _time = time;
        _proxyState = proxyState;
        _defaults = ClientLimitSettings.From(options.CurrentValue.RateLimit);
        _subscription = options.OnChange(o => _defaults = ClientLimitSettings.From(o.RateLimit));
        _limited = metrics.Factory.CreateCounter(
            "balancer_rate_limited_total",
            "Requests answered 429 by the per-client limits (Balancer:RateLimit), by cluster and by the limit: rate or concurrency. None of them reached a backend.",
            new CounterConfiguration { LabelNames = ["cluster", "limit"] });
        metrics.Registry.AddBeforeCollectCallback(Refresh);
    }

    /// <summary>Token buckets alive now (one per client and set of limits); for tests and the status API.</summary>
    public int RateBuckets => Volatile.Read(ref _rateBuckets);

    /// <summary>The limits for a request of <paramref name="route"/>: its own from metadata, or the defaults.</summary>
    public ClientLimitSettings SettingsFor(RouteModel? route)
    {
        var defaults = _defaults;
        // Most routes say nothing about limits: two field reads, no table lookup.
        if (route?.Config.Metadata is not { Count: > 0 })
        {
            return defaults;
        }

        var limits = _routes.GetValue(route, static r => new RouteLimits(r.Config.RouteId, r.Config.Metadata));
        return limits.For(defaults);
    }

    /// <summary>A token of the client's bucket, or a lease saying no, with <c>RetryAfter</c>.</summary>
    public RateLimitLease AcquireRate(ClientLimitSettings settings, IPAddress client) =>
        (_rate ?? Limiters().Rate).AttemptAcquire(new ClientKey(settings, client));

    /// <summary>A place among the client's requests in flight; dispose it when the request ends.</summary>
    public RateLimitLease AcquireConcurrency(ClientLimitSettings settings, IPAddress client) =>
        (_concurrency ?? Limiters().Concurrency).AttemptAcquire(new ClientKey(settings, client));

    /// <summary>Whether the partitioned limiters exist yet (they are made by the first limited request); for tests.</summary>
    internal bool LimitersCreated => Volatile.Read(ref _concurrency) is not null;

    /// <summary>Counts a request refused in <paramref name="cluster"/>.</summary>
    public void CountLimited(string cluster, bool rate)
    {
        var counters = _clusters.GetOrAdd(cluster, static (id, counter) => new ClusterCounters(counter, id), _limited);
        (rate ? counters.Rate : counters.Concurrency).Inc();
    }

    /// <summary>Requests of <paramref name="cluster"/> refused since start-up, both limits together.</summary>
    public long LimitedIn(string cluster) =>
        _clusters.TryGetValue(cluster, out var counters) ? (long)(counters.Rate.Value + counters.Concurrency.Value) : 0;

    public async ValueTask DisposeAsync()
    {
        _subscription?.Dispose();
        PartitionedRateLimiter<ClientKey>? rate, concurrency;
        lock (_gate)
        {
            _disposed = true;
            (rate, concurrency) = (_rate, _concurrency);
        }

        if (rate is not null)
        {
            await rate.DisposeAsync();
        }

        if (concurrency is not null)
        {
            await concurrency.DisposeAsync();
        }
    }

    /// <summary>Both limiters, made together on first use; the rate limiter is published first, so either set means both are.</summary>
    private (PartitionedRateLimiter<ClientKey> Rate, PartitionedRateLimiter<ClientKey> Concurrency) Limiters()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_rate is null)
            {
                Volatile.Write(ref _rate, PartitionedRateLimiter.Create<ClientKey, ClientKey>(key => RateLimitPartition.Get(key, NewBucket)));
                Volatile.Write(ref _concurrency, PartitionedRateLimiter.Create<ClientKey, ClientKey>(static key => RateLimitPartition.GetConcurrencyLimiter(
                    key,
                    static k => new ConcurrencyLimiterOptions { PermitLimit = k.Settings.MaxConcurrent, QueueLimit = 0 })));
            }

            return (_rate, _concurrency!);
        }
    }

    private RateLimiter NewBucket(ClientKey key)
    {
        Interlocked.Increment(ref _rateBuckets);
        return new ClientTokenBucket(key.Settings.RequestsPerSecond, key.Settings.Burst, _time, () => Interlocked.Decrement(ref _rateBuckets));
    }

    /// <summary>Every cluster has both series from start-up; a cluster that is gone loses them.</summary>
    private void Refresh()
    {
        var current = new HashSet<string>(StringComparer.Ordinal);
        foreach (var cluster in _proxyState.GetClusters())
        {
            current.Add(cluster.ClusterId);
            _clusters.GetOrAdd(cluster.ClusterId, static (id, counter) => new ClusterCounters(counter, id), _limited);
        }

        foreach (var id in _clusters.Keys)
        {
            if (!current.Contains(id) && _clusters.TryRemove(id, out _))
            {
                _limited.RemoveLabelled(id, RateLabel);
                _limited.RemoveLabelled(id, ConcurrencyLabel);
            }
        }
    }

    /// <summary>A client under one set of limits. The settings are compared by value, so equal limits share buckets.</summary>
    internal readonly record struct ClientKey(ClientLimitSettings Settings, IPAddress Address);

    private sealed class ClusterCounters(Counter counter, string cluster)
    {
        public Counter.Child Rate { get; } = counter.WithLabels(cluster, RateLabel);

        public Counter.Child Concurrency { get; } = counter.WithLabels(cluster, ConcurrencyLabel);
    }

    /// <summary>A route's own limits, parsed once per route model (a new model comes with each change of the route).</summary>
    private sealed class RouteLimits(string routeId, IReadOnlyDictionary<string, string>? metadata)
    {
        private volatile Resolved? _resolved;

        public ClientLimitSettings For(ClientLimitSettings defaults)
        {
            if (metadata is null || metadata.Count == 0)
            {
                return defaults;
            }

            // Recomputed only when the defaults change; a benign race computes the same value twice.
            var resolved = _resolved;
            if (resolved is null || !ReferenceEquals(resolved.Defaults, defaults))
            {
                resolved = new Resolved(defaults, ClientLimitSettings.ForRoute(routeId, metadata, defaults) ?? defaults);
                _resolved = resolved;
            }

            return resolved.Own;
        }

        private sealed record Resolved(ClientLimitSettings Defaults, ClientLimitSettings Own);
    }
}
