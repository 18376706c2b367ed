using System.Collections.Concurrent;
using Yarp.ReverseProxy.Model;

namespace Balancer.Runtime;

/// <summary>
/// The destinations whose health or runtime state changed since each cluster's available list was last computed,
/// announced by the code that changed them (the health tracker, the runtime API), so that
/// <see cref="RuntimeAvailableDestinations"/> looks again at those alone rather than at every destination of the cluster.
/// </summary>
/// <remarks>
/// <para>A change is announced after it is made and before the update it asks for
/// (<c>using (changes.Announce(cluster, destination)) updater.UpdateAvailableDestinations(cluster);</c>). The computation
/// takes the announcements before it reads any destination, so a change announced later is read by the computation after it.</para>
/// <para>YARP computes a cluster's list one call at a time and drops a call while two are already in (its debounce);
/// what the dropped call announced stays pending, and the call waiting takes it. An update outside an announcement (a
/// caller that does not announce) marks the cluster's next computation as a full one (see
/// <see cref="LoadBalancing.PreparingDestinationsUpdater"/>), and so does a burst of more than
/// <see cref="MaxPending"/> changes (a probe round that finds many down), for which a full pass is as cheap.</para>
/// </remarks>
internal sealed class AvailabilityChanges
{
    /// <summary>More changes than this before a computation: it looks at every destination.</summary>
    public const int MaxPending = 16;

    // The instance and cluster the current thread announced to, while it runs the update that follows the announcement.
    [ThreadStatic]
    private static AvailabilityChanges? t_announcing;

    [ThreadStatic]
    private static string? t_cluster;

    private readonly ConcurrentDictionary<string, Pending> _clusters = new(StringComparer.OrdinalIgnoreCase);
    private int _overflows;

    /// <summary>
    /// How many times more than <see cref="MaxPending"/> changes piled up before a computation took them (each makes
    /// the next computation a full one): a thread whose updates YARP's debounce drops keeps changing meanwhile.
    /// </summary>
    public int Overflows => Volatile.Read(ref _overflows);

    /// <summary>Whether the current thread is inside an announcement to this instance (for any cluster).</summary>
    public bool IsAnnouncing => ReferenceEquals(t_announcing, this);

    /// <summary>
    /// Whether the current thread is inside an announcement to this instance for <paramref name="clusterId"/>: then the
    /// computation it runs has nothing to read when nothing is pending, since what it announced was taken (and read
    /// after it was changed) by a computation that ran on another thread in the meantime.
    /// </summary>
    public bool IsAnnouncingFor(string clusterId) => IsAnnouncing && string.Equals(t_cluster, clusterId, StringComparison.OrdinalIgnoreCase);

    /// <summary>Announces that <paramref name="destination"/>'s health or state changed; dispose after the update that follows.</summary>
    public Scope Announce(ClusterState cluster, DestinationState destination) => Announce(cluster, new ReadOnlySpan<DestinationState>(in destination));

    /// <summary>Announces that each of <paramref name="destinations"/> changed; dispose after the update that follows.</summary>
    public Scope Announce(ClusterState cluster, ReadOnlySpan<DestinationState> destinations)
    {
        var pending = For(cluster.ClusterId);
        lock (pending.Gate)
        {
            foreach (var destination in destinations)
            {
                Count(pending.Add(destination));
            }
        }

        return Enter(cluster.ClusterId);
    }

    /// <summary>Something changed that no one announced: the cluster's next computation looks at every destination.</summary>
    public void Unannounced(string clusterId)
    {
        var pending = For(clusterId);
        lock (pending.Gate)
        {
            pending.Everything();
        }
    }

    /// <summary>
    /// Takes the cluster's announced changes into <paramref name="into"/> (of <see cref="MaxPending"/> places) and
    /// returns how many (0 when none is pending), or -1 when the computation must look at every destination.
    /// </summary>
    public int Take(string clusterId, DestinationState[] into)
    {
        if (!_clusters.TryGetValue(clusterId, out var pending))
        {
            return 0;
        }

        lock (pending.Gate)
        {
            return pending.Take(into);
        }
    }

    private void Count(bool overflowed)
    {
        if (overflowed)
        {
            Interlocked.Increment(ref _overflows);
        }
    }

    private Pending For(string clusterId) => _clusters.GetOrAdd(clusterId, static _ => new Pending());

    private Scope Enter(string clusterId)
    {
        var scope = new Scope(t_announcing, t_cluster);
        t_announcing = this;
        t_cluster = clusterId;
        return scope;
    }

    /// <summary>The thread's announcement, ended once the update that follows it has returned.</summary>
    public readonly struct Scope : IDisposable
    {
        private readonly AvailabilityChanges? _outer;
        private readonly string? _outerCluster;

        internal Scope(AvailabilityChanges? outer, string? outerCluster)
        {
            _outer = outer;
            _outerCluster = outerCluster;
        }

        public void Dispose()
        {
            t_announcing = _outer;
            t_cluster = _outerCluster;
        }
    }

    /// <summary>One cluster's changes since its last computation; guarded by <see cref="Gate"/>.</summary>
    private sealed class Pending
    {
        private readonly DestinationState[] _items = new DestinationState[MaxPending];
        private int _count;
        private bool _everything;

        public Lock Gate { get; } = new();

        /// <summary>Adds <paramref name="destination"/>; true when it made one too many, so the next computation reads every destination.</summary>
        public bool Add(DestinationState destination)
        {
            if (_everything || Array.IndexOf(_items, destination, 0, _count) >= 0)
            {
                return false;
            }

            if (_count == MaxPending)
            {
                Everything();
                return true;
            }

            _items[_count++] = destination;
            return false;
        }

        public void Everything()
        {
            _everything = true;
            Array.Clear(_items, 0, _count);
            _count = 0;
        }

        public int Take(DestinationState[] into)
        {
            var count = _everything ? -1 : _count;
            Array.Copy(_items, into, _everything ? 0 : _count);
            Array.Clear(_items, 0, _count);
            _count = 0;
            _everything = false;
            return count;
        }
    }
}
