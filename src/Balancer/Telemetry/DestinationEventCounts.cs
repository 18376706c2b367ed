using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace Balancer.Telemetry;

/// <summary>
/// The counters of rare per-destination events, retries by reason (<c>balancer_retries_total</c>) and health
/// changes by direction (<c>balancer_destination_health_transitions_total</c>), kept as plain counts and written
/// into <c>/metrics</c> by <see cref="BalancerMetricsRegistry.ExportAsync"/> beside prometheus-net's series.
/// </summary>
/// <remarks>
/// Every destination has all nine series from start-up, at 0, so that <c>increase()</c> sees its first event. As
/// prometheus-net children (each with its label arrays, cached label bytes and dictionary entry) the nine held about
/// 4 KB per destination, mostly to say 0; here they are nine longs and the destination's label text.
/// </remarks>
internal sealed class DestinationEventCounts
{
    private static readonly byte[][] Suffixes =
    [
        .. DestinationEvents.RetryReasons.Select(reason => Encoding.UTF8.GetBytes($",reason=\"{reason}\"}} ")),
        .. DestinationEvents.HealthStates.Select(state => Encoding.UTF8.GetBytes($",to=\"{state}\"}} ")),
    ];

    private readonly ConcurrentDictionary<(string Cluster, string Destination), Counts> _byDestination = new();

    /// <summary>A retry away from <paramref name="destination"/> after a failure of the kind <paramref name="reason"/>.</summary>
    public void Retry(string cluster, string destination, string reason) =>
        Increment(cluster, destination, Index(DestinationEvents.RetryReasons, reason, 0));

    /// <summary>A change of the destination's health to <paramref name="to"/> (<c>up</c>, <c>down</c>, <c>unknown</c>).</summary>
    public void HealthTransition(string cluster, string destination, string to) =>
        Increment(cluster, destination, Index(DestinationEvents.HealthStates, to, DestinationEvents.RetryReasons.Length));

    /// <summary>The destination's series, at 0 until its first event.</summary>
    public void Add(string cluster, string destination) => CountsOf(cluster, destination);

    /// <summary>Drops the series of a destination that left the config.</summary>
    public void Remove(string cluster, string destination) => _byDestination.TryRemove((cluster, destination), out _);

    /// <summary>The count of one series, for tests.</summary>
    public long Value(string cluster, string destination, string reasonOrState)
    {
        if (!_byDestination.TryGetValue((cluster, destination), out var counts))
        {
            return 0;
        }

        var retry = Array.IndexOf(DestinationEvents.RetryReasons, reasonOrState);
        var index = retry >= 0 ? retry : Index(DestinationEvents.HealthStates, reasonOrState, DestinationEvents.RetryReasons.Length);
        return Interlocked.Read(ref counts.Values[index]);
    }

    /// <summary>
    /// Writes both families in the Prometheus text format, or in OpenMetrics (family names without <c>_total</c>,
    /// values as floats), the way prometheus-net writes its own counters; through one pooled buffer of 64 KB, not
    /// a buffer of the whole (megabytes at thousands of destinations, on the large object heap at every scrape).
    /// </summary>
    public async Task WriteToAsync(Stream output, bool openMetrics, CancellationToken cancel)
    {
        var all = _byDestination.Values.ToArray();
        var chunk = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            var used = 0;
            foreach (var (family, help, first, count) in Families)
            {
                var name = openMetrics ? family : family + "_total";
                used = await EnsureAsync(output, chunk, used, 1024, cancel);
                used += Encoding.UTF8.GetBytes($"# HELP {name} {help}\n# TYPE {name} counter\n", chunk.AsSpan(used));
                var sample = Encoding.UTF8.GetBytes(family + "_total{");
                foreach (var counts in all)
                {
                    used = await EnsureAsync(output, chunk, used, count * (sample.Length + counts.Labels.Length + 64), cancel);
                    used = WriteLines(chunk, used, sample, counts, first, count, openMetrics);
                }
            }

            await output.WriteAsync(chunk.AsMemory(0, used), cancel);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
    }

    private static readonly (string Family, string Help, int First, int Count)[] Families =
    [
        ("balancer_retries", DestinationEvents.RetriesHelp, 0, DestinationEvents.RetryReasons.Length),
        ("balancer_destination_health_transitions", DestinationEvents.HealthTransitionsHelp, DestinationEvents.RetryReasons.Length, DestinationEvents.HealthStates.Length),
    ];

    /// <summary>Passes the chunk on when fewer than <paramref name="needed"/> bytes of it are left; the bytes now used.</summary>
    private static async ValueTask<int> EnsureAsync(Stream output, byte[] chunk, int used, int needed, CancellationToken cancel)
    {
        if (chunk.Length - used >= needed)
        {
            return used;
        }

        if (needed > chunk.Length)
        {
            throw new InvalidOperationException($"A destination's label text of {needed} bytes does not fit a buffer of {chunk.Length}.");
        }

        await output.WriteAsync(chunk.AsMemory(0, used), cancel);
        return 0;
    }

    private static int WriteLines(byte[] chunk, int used, byte[] sample, Counts counts, int first, int count, bool openMetrics)
    {
        var span = chunk.AsSpan();
        for (var i = first; i < first + count; i++)
        {
            sample.CopyTo(span[used..]);
            used += sample.Length;
            counts.Labels.CopyTo(span[used..]);
            used += counts.Labels.Length;
            Suffixes[i].CopyTo(span[used..]);
            used += Suffixes[i].Length;
            Interlocked.Read(ref counts.Values[i]).TryFormat(span[used..], out var written, default, CultureInfo.InvariantCulture);
            used += written;
            var end = openMetrics ? ".0\n"u8 : "\n"u8;
            end.CopyTo(span[used..]);
            used += end.Length;
        }

        return used;
    }

    private static int Index(string[] values, string value, int offset)
    {
        var index = Array.IndexOf(values, value);
        return index >= 0 ? offset + index : throw new ArgumentOutOfRangeException(nameof(value), value, $"not one of {string.Join(", ", values)}");
    }

    private void Increment(string cluster, string destination, int index) =>
        Interlocked.Increment(ref CountsOf(cluster, destination).Values[index]);

    private Counts CountsOf(string cluster, string destination) =>
        _byDestination.GetOrAdd((cluster, destination), static key => new Counts(key.Cluster, key.Destination));

    private sealed class Counts(string cluster, string destination)
    {
        public readonly long[] Values = new long[DestinationEvents.RetryReasons.Length + DestinationEvents.HealthStates.Length];

        public readonly byte[] Labels = Encoding.UTF8.GetBytes($"cluster=\"{Escape(cluster)}\",destination=\"{Escape(destination)}\"");

        private static string Escape(string value) =>
            value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
    }
}
