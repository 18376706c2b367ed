using System.Collections.Concurrent;

namespace Balancer.Runtime;

/// <summary>
/// The operators' runtime overrides (drain, maintenance, weight) and the slow-start ramps in progress, per
/// destination. Kept by cluster and destination id rather than on YARP's state objects, so that they outlive
/// config reloads; saved to the state file on every change, so that they outlive restarts.
/// </summary>
/// <remarks>
/// Readers (the policies when they rebuild a destination snapshot, the status API) never lock; every change of a
/// weight or a ramp bumps <see cref="Generation"/>, which is how a policy notices that its snapshot's weights are
/// stale. A change of mode alone leaves it: that reaches the policies as a new available list, and bumping it too
/// would make every drain cost a second rebuild of each cluster's snapshot, with every weight looked up again.
/// </remarks>
internal sealed class RuntimeOverrides
{
    private readonly ConcurrentDictionary<string, Entry> _overrides = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, long> _rampStarts = new(StringComparer.OrdinalIgnoreCase);
    private readonly StateFile? _file;
    private readonly Lock _gate = new();
    private long _generation;

    public RuntimeOverrides(StateFile? file)
    {
        _file = file;
        foreach (var saved in file?.Load() ?? [])
        {
            _overrides[Key(saved.Cluster, saved.Destination)] = saved;
        }
    }

    /// <summary>Raised after every change of an override, outside the lock.</summary>
    public event Action<string, string>? Changed;

    /// <summary>Changes whenever a weight override or a ramp changes (not on a change of mode alone).</summary>
    public long Generation => Volatile.Read(ref _generation);

    public DestinationOverride? Find(string clusterId, string destinationId) =>
        _overrides.TryGetValue(Key(clusterId, destinationId), out var entry) ? entry.Override : null;

    public AdminMode ModeOf(string clusterId, string destinationId) => Find(clusterId, destinationId)?.Mode ?? AdminMode.Active;

    public IReadOnlyList<Entry> All() => [.. _overrides.Values];

    /// <summary>The destinations of <paramref name="clusterId"/> in <paramref name="mode"/>; a walk over the overrides, not the cluster.</summary>
    public IEnumerable<string> InMode(string clusterId, AdminMode mode)
    {
        foreach (var (_, entry) in _overrides)
        {
            if (entry.Override.Mode == mode && string.Equals(entry.Cluster, clusterId, StringComparison.OrdinalIgnoreCase))
            {
                yield return entry.Destination;
            }
        }
    }

    /// <summary>
    /// The destinations of <paramref name="clusterId"/> that an operator took out of service (drained or in
    /// maintenance), or null when none is: a walk over the overrides, so that a cluster of thousands with none
    /// out pays nothing per destination when its available list is rebuilt.
    /// </summary>
    public HashSet<string>? OutOfService(string clusterId)
    {
        HashSet<string>? ids = null;
        foreach (var (_, entry) in _overrides)
        {
            if (entry.Override.Mode != AdminMode.Active && string.Equals(entry.Cluster, clusterId, StringComparison.OrdinalIgnoreCase))
            {
                (ids ??= new HashSet<string>(StringComparer.OrdinalIgnoreCase)).Add(entry.Destination);
            }
        }

        return ids;
    }

    /// <summary>Applies <paramref name="change"/> to the destination's override and saves; returns the previous one.</summary>
    public DestinationOverride? Update(string clusterId, string destinationId, Func<DestinationOverride?, DestinationOverride> change)
    {
        DestinationOverride? previous;
        lock (_gate)
        {
            var key = Key(clusterId, destinationId);
            previous = _overrides.TryGetValue(key, out var entry) ? entry.Override : null;
            var next = change(previous);
            if (next.IsEmpty)
            {
                _overrides.TryRemove(key, out _);
            }
            else
            {
                _overrides[key] = new Entry(clusterId, destinationId, next);
            }

            if (previous?.Weight != (next.IsEmpty ? null : next.Weight))
            {
                Interlocked.Increment(ref _generation);
            }

            Save();
        }

        Changed?.Invoke(clusterId, destinationId);
        return previous;
    }

    /// <summary>Drops the overrides of destinations for which <paramref name="gone"/> is true; returns them.</summary>
    public IReadOnlyList<Entry> RemoveWhere(Func<string, string, bool> gone)
    {
        List<Entry> removed = [];
        lock (_gate)
        {
            foreach (var (key, entry) in _overrides)
            {
                if (gone(entry.Cluster, entry.Destination) && _overrides.TryRemove(key, out _))
                {
                    removed.Add(entry);
                }
            }

            if (removed.Count > 0)
            {
                if (removed.Exists(entry => entry.Override.Weight is not null))
                {
                    Interlocked.Increment(ref _generation);
                }

                Save();
            }
        }

        foreach (var entry in removed)
        {
            Changed?.Invoke(entry.Cluster, entry.Destination);
        }

        return removed;
    }

    /// <summary>Starts a slow-start ramp at <paramref name="timestamp"/> (a <see cref="TimeProvider"/> timestamp).</summary>
    public void StartRamp(string clusterId, string destinationId, long timestamp) => StartRamp(clusterId, destinationId, timestamp, changesWeights: true);

    /// <summary>
    /// Starts a slow-start ramp; <paramref name="changesWeights"/> false when the destination has no slow start configured,
    /// so its weight stays what it was: then the policies' snapshots stay valid, and a destination coming back in a
    /// cluster of thousands does not make every policy weigh all of them again.
    /// </summary>
    public void StartRamp(string clusterId, string destinationId, long timestamp, bool changesWeights)
    {
        _rampStarts[Key(clusterId, destinationId)] = timestamp;
        if (changesWeights)
        {
            Interlocked.Increment(ref _generation);
        }
    }

    /// <summary>
    /// Whether any override or ramp names <paramref name="clusterId"/>: when none does, a walk over a cluster of
    /// thousands skips a lookup per destination.
    /// </summary>
    public bool Touches(string clusterId)
    {
        var prefix = clusterId + "\n";
        foreach (var key in _overrides.Keys)
        {
            if (key.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        foreach (var key in _rampStarts.Keys)
        {
            if (key.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// The destinations of <paramref name="clusterId"/> whose weight is not simply the file's: an operator's weight
    /// override, or a ramp started at or after <paramref name="rampsSince"/> (older ones have ended). Null when there
    /// are none, which is the usual case: a drained destination or one that came back long ago then costs a rebuilt
    /// snapshot no lookup per destination.
    /// </summary>
    public HashSet<string>? WeightAdjusted(string clusterId, long rampsSince)
    {
        HashSet<string>? ids = null;
        foreach (var (_, entry) in _overrides)
        {
            if (entry.Override.Weight is not null && string.Equals(entry.Cluster, clusterId, StringComparison.OrdinalIgnoreCase))
            {
                (ids ??= new HashSet<string>(StringComparer.OrdinalIgnoreCase)).Add(entry.Destination);
            }
        }

        var prefix = clusterId + "\n";
        foreach (var (key, start) in _rampStarts)
        {
            if (start >= rampsSince && key.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            {
                (ids ??= new HashSet<string>(StringComparer.OrdinalIgnoreCase)).Add(key[prefix.Length..]);
            }
        }

        return ids;
    }

    public long? RampStart(string clusterId, string destinationId) =>
        _rampStarts.TryGetValue(Key(clusterId, destinationId), out var start) ? start : null;

    private void Save() => _file?.Save([.. _overrides.Values]);

    private static string Key(string clusterId, string destinationId) => clusterId + "\n" + destinationId;

    /// <summary>An override with the ids it belongs to.</summary>
    public sealed record Entry(string Cluster, string Destination, DestinationOverride Override);
}
