using System.Collections.Concurrent;
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

    /// <summary>Writes both families, every destination's series of each.</summary>
    public async ValueTask WriteAsync(ExpositionWriter writer, CancellationToken cancel)
    {
        foreach (var (family, help, first, count) in Families)
        {
            await writer.FamilyAsync(family + "_total", help, "counter", cancel);
            var sample = Encoding.UTF8.GetBytes(family + "_total{");
            // The dictionary's own enumerator, safe while destinations come and go: no copy of thousands of entries.
            foreach (var (_, counts) in _byDestination)
            {
                await writer.EnsureAsync(count * ExpositionWriter.SampleBytes(sample.Length, counts.Labels.Length, LongestSuffix), cancel);
                for (var i = first; i < first + count; i++)
                {
                    writer.Sample(sample, counts.Labels, Suffixes[i], Interlocked.Read(ref counts.Values[i]));
                }
            }
        }
    }

    private static readonly int LongestSuffix = Suffixes.Max(s => s.Length);

    private static readonly (string Family, string Help, int First, int Count)[] Families =
    [
        ("balancer_retries", DestinationEvents.RetriesHelp, 0, DestinationEvents.RetryReasons.Length),
        ("balancer_destination_health_transitions", DestinationEvents.HealthTransitionsHelp, DestinationEvents.RetryReasons.Length, DestinationEvents.HealthStates.Length),
    ];

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

        public readonly byte[] Labels = ExpositionWriter.DestinationLabels(cluster, destination);
    }
}
