using System.Globalization;
using System.Text;
using Prometheus;

namespace Balancer.Telemetry;

/// <summary>
/// Everything recorded about one destination. Its counters are plain longs that <see cref="ProxyMetrics"/> writes into
/// <c>/metrics</c> itself, with the destination's label text encoded once; only the per-destination duration histogram,
/// when the cluster keeps one, is a prometheus-net child, resolved here so that the request path does no label lookups.
/// </summary>
internal sealed class DestinationMetrics
{
    /// <summary>The <c>code</c> label of attempts that failed at transport level (no HTTP status).</summary>
    public const string ErrorCode = "error";

    private static readonly byte[] ErrorLabel = CodeLabel(ErrorCode);
    private static readonly byte[][] GrpcLabels = [.. Enumerable.Range(0, Grpc.GrpcProtocol.StatusCount).Select(s => Encoding.UTF8.GetBytes($",grpc_status=\"{Grpc.GrpcProtocol.Name(s)}\"}} "))];

    /// <summary>The longest label suffix a sample of these families has (a status code or a gRPC status).</summary>
    public static readonly int LongestLabelEnd = Math.Max(ErrorLabel.Length, GrpcLabels.Max(l => l.Length));

    // The codes seen so far, searched in order: a destination answers a handful of codes, and an array indexed
    // by every possible code would cost kilobytes per destination in a cluster of thousands.
    private volatile StatusCount[] _byStatus;
    private long _errors;
    private readonly ProxyMetrics _series;
    private readonly ClusterDurations _durations;
    private volatile Histogram.Child? _ownDuration;
    private long _requestBytes;
    private long _responseBytes;
    private readonly long[] _grpcByStatus = new long[Grpc.GrpcProtocol.StatusCount];

    // The gRPC statuses with a series, one bit each: a success and the status the balancer answers itself exist from
    // the start, so the gRPC panels show 0, not no data; others from their first call.
    private int _grpcExported = (1 << Grpc.GrpcProtocol.Ok) | (1 << Grpc.GrpcProtocol.Unavailable);
    private long _total;
    private readonly Lock _addingCode = new();

    public DestinationMetrics(ProxyMetrics series, string cluster, string destination)
    {
        Cluster = cluster;
        Destination = destination;
        Labels = ExpositionWriter.DestinationLabels(cluster, destination);
        // The commonest code exists from start-up too, so rate() works before the first request.
        _byStatus = [new StatusCount(200)];
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
    }

    public string Cluster { get; }

    public string Destination { get; }

    /// <summary>The number of the last scrape that found the destination available; read and written under <see cref="ProxyMetrics"/>' lock.</summary>
    internal int AvailableMark;

    /// <summary>The destination's label text, <c>cluster="…",destination="…"</c>.</summary>
    public byte[] Labels { get; }

    public RollingWindow Window { get; } = new();

    /// <summary>Proxied attempts so far, whatever their outcome.</summary>
    public long Total => Interlocked.Read(ref _total);

    /// <summary>Records one finished attempt; <paramref name="status"/> is 0 for a transport failure.</summary>
    public void Record(int status, double seconds, long second)
    {
        Interlocked.Increment(ref _total);
        if (status <= 0)
        {
            Interlocked.Increment(ref _errors);
        }
        else
        {
            Interlocked.Increment(ref CountOf(status).Count);
        }

        (_durations.Shared ?? _ownDuration ?? OwnDuration()).Observe(seconds);
        Window.Record(second, seconds);
    }

    /// <summary>Records the gRPC status a call answered through this destination ended with.</summary>
    public void RecordGrpc(int status)
    {
        var index = (uint)status < (uint)_grpcByStatus.Length ? status : Grpc.GrpcProtocol.Unknown;
        Interlocked.Increment(ref _grpcByStatus[index]);
        if ((Volatile.Read(ref _grpcExported) & (1 << index)) == 0)
        {
            Interlocked.Or(ref _grpcExported, 1 << index);
        }
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
            Interlocked.Add(ref _requestBytes, bytes);
        }
    }

    public void AddResponseBytes(long bytes)
    {
        if (bytes > 0)
        {
            Interlocked.Add(ref _responseBytes, bytes);
        }
    }

    /// <summary>The samples <see cref="WriteRequests"/> writes now (one per status code seen, and the transport errors).</summary>
    public int RequestSamples => _byStatus.Length + 1;

    /// <summary>
    /// The destination's <c>balancer_destination_requests_total</c> samples, at most <paramref name="samples"/> (the
    /// <see cref="RequestSamples"/> room was made for: a code that arrives meanwhile waits for the next scrape).
    /// </summary>
    public void WriteRequests(ExpositionWriter writer, ReadOnlySpan<byte> name, int samples)
    {
        var known = _byStatus;
        foreach (var entry in known.AsSpan(0, Math.Min(samples - 1, known.Length)))
        {
            writer.Sample(name, Labels, entry.Label, Interlocked.Read(ref entry.Count));
        }

        writer.Sample(name, Labels, ErrorLabel, Interlocked.Read(ref _errors));
    }

    public long RequestBytes => Interlocked.Read(ref _requestBytes);

    public long ResponseBytes => Interlocked.Read(ref _responseBytes);

    /// <summary>The samples <see cref="WriteGrpcCalls"/> writes now.</summary>
    public int GrpcSamples => int.PopCount(Volatile.Read(ref _grpcExported));

    /// <summary>The destination's <c>balancer_destination_grpc_calls_total</c> samples; room for <see cref="GrpcSamples"/> made.</summary>
    public void WriteGrpcCalls(ExpositionWriter writer, ReadOnlySpan<byte> name, int samples)
    {
        var exported = Volatile.Read(ref _grpcExported);
        for (var status = 0; status < _grpcByStatus.Length && samples > 0; status++)
        {
            if ((exported & (1 << status)) != 0)
            {
                writer.Sample(name, Labels, GrpcLabels[status], Interlocked.Read(ref _grpcByStatus[status]));
                samples--;
            }
        }
    }

    private StatusCount CountOf(int status)
    {
        var known = _byStatus;
        foreach (var entry in known)
        {
            if (entry.Status == status)
            {
                return entry;
            }
        }

        lock (_addingCode)
        {
            // Another thread may have added it meanwhile: one series per code, whoever came first.
            known = _byStatus;
            foreach (var entry in known)
            {
                if (entry.Status == status)
                {
                    return entry;
                }
            }

            var added = new StatusCount(status);
            _byStatus = [.. known, added];
            return added;
        }
    }

    private static byte[] CodeLabel(string code) => Encoding.UTF8.GetBytes($",code=\"{code}\"}} ");

    private sealed class StatusCount(int status)
    {
        public readonly int Status = status;
        public readonly byte[] Label = CodeLabel(status.ToString(CultureInfo.InvariantCulture));
        public long Count;
    }
}
