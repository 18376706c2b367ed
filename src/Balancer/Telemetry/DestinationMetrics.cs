using System.Globalization;
using Prometheus;

namespace Balancer.Telemetry;

/// <summary>
/// Everything recorded about one destination, with its Prometheus children resolved once so that the
/// request path does no label lookups.
/// </summary>
internal sealed class DestinationMetrics
{
    /// <summary>The <c>code</c> label of attempts that failed at transport level (no HTTP status).</summary>
    public const string ErrorCode = "error";

    private readonly Counter _requests;
    // The codes seen so far, searched in order: a destination answers a handful of codes, and an array indexed
    // by every possible code would cost kilobytes per destination in a cluster of thousands.
    private volatile StatusChild[] _byStatus;
    private readonly Counter.Child _errors;
    private readonly ProxyMetrics _series;
    private readonly ClusterDurations _durations;
    private volatile Histogram.Child? _ownDuration;
    private readonly Counter.Child _requestBytes;
    private readonly Counter.Child _responseBytes;
    private readonly Counter _grpcCalls;
    private readonly Counter.Child?[] _grpcByStatus = new Counter.Child?[Grpc.GrpcProtocol.StatusCount];
    private long _total;

    public DestinationMetrics(ProxyMetrics series, string cluster, string destination)
    {
        Cluster = cluster;
        Destination = destination;
        _requests = series.Requests;
        _errors = _requests.WithLabels(cluster, destination, ErrorCode);
        // The commonest code exists from start-up too, so rate() works before the first request.
        _byStatus = [new StatusChild(200, _requests.WithLabels(cluster, destination, "200"))];
        _series = series;
        // Without per-destination histograms every destination of the cluster observes into the cluster's one.
        _durations = series.DurationsOf(cluster);
        lock (_durations)
        {
            if (!_durations.PerCluster)
            {
                _ownDuration = series.DestinationDuration!.WithLabels(cluster, destination);
            }
        }
        _requestBytes = series.RequestBytes.WithLabels(cluster, destination);
        _responseBytes = series.ResponseBytes.WithLabels(cluster, destination);
        _grpcCalls = series.GrpcCalls;
        // Likewise a success and the status the balancer answers itself, so the gRPC panels show 0, not no data.
        foreach (var status in new[] { Grpc.GrpcProtocol.Ok, Grpc.GrpcProtocol.Unavailable })
        {
            _grpcByStatus[status] = _grpcCalls.WithLabels(cluster, destination, Grpc.GrpcProtocol.Name(status));
        }
    }

    public string Cluster { get; }

    public string Destination { get; }

    public RollingWindow Window { get; } = new();

    /// <summary>Proxied attempts so far, whatever their outcome.</summary>
    public long Total => Interlocked.Read(ref _total);

    /// <summary>Records one finished attempt; <paramref name="status"/> is 0 for a transport failure.</summary>
    public void Record(int status, double seconds, long second)
    {
        Interlocked.Increment(ref _total);
        CounterFor(status).Inc();
        (_durations.Shared ?? _ownDuration ?? OwnDuration()).Observe(seconds);
        Window.Record(second, seconds);
    }

    /// <summary>Records the gRPC status a call answered through this destination ended with.</summary>
    public void RecordGrpc(int status)
    {
        var index = (uint)status < (uint)_grpcByStatus.Length ? status : Grpc.GrpcProtocol.Unknown;
        (_grpcByStatus[index] ??= _grpcCalls.WithLabels(Cluster, Destination, Grpc.GrpcProtocol.Name(index))).Inc();
    }

    /// <summary>Sets or (with null) drops this destination's own duration histogram; the caller holds the cluster's lock.</summary>
    internal void KeepOwnDuration(Histogram.Child? child) => _ownDuration = child;

    /// <summary>
    /// The histogram to observe into when the cluster has just switched back to per-destination histograms and
    /// this destination's was not yet restored.
    /// </summary>
    private Histogram.Child OwnDuration()
    {
        lock (_durations)
        {
            return _durations.Shared ?? (_ownDuration ??= _series.DestinationDuration!.WithLabels(Cluster, Destination));
        }
    }

    public void AddRequestBytes(long bytes)
    {
        if (bytes > 0)
        {
            _requestBytes.Inc(bytes);
        }
    }

    public void AddResponseBytes(long bytes)
    {
        if (bytes > 0)
        {
            _responseBytes.Inc(bytes);
        }
    }

    private Counter.Child CounterFor(int status)
    {
        if (status <= 0)
        {
            return _errors;
        }

        var known = _byStatus;
        foreach (var entry in known)
        {
            if (entry.Status == status)
            {
                return entry.Child;
            }
        }

        // A benign race: two threads may both add the same code; prometheus-net returns the same child to both.
        var child = _requests.WithLabels(Cluster, Destination, status.ToString(CultureInfo.InvariantCulture));
        _byStatus = [.. known, new StatusChild(status, child)];
        return child;
    }

    private sealed record StatusChild(int Status, Counter.Child Child);
}
