using System.Runtime.CompilerServices;
using Balancer.LoadBalancing;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Runtime;

/// <summary>
/// Wraps YARP's available-destinations policies so that drained and maintenance destinations are left out
/// of every cluster's available list, exactly as a destination that is down: every policy skips them, and
/// IpHash clients move as if it had failed and come back when it is enabled.
/// </summary>
/// <remarks>
/// Runs on every health or state change of any destination of the cluster, on the thread that made it. For YARP's two
/// built-in policies (<c>HealthyOrPanic</c>, the default, and <c>HealthyAndUnknown</c>) it applies their rule itself, in
/// the same pass that leaves out the destinations taken out of service: one array of exactly the available destinations
/// per change, instead of YARP's growing list and a filtered copy of it. When every destination is available, one array
/// of all of them per list of all (per reload), not per change, which the load-balancing policies hold as it is; when all
/// but a few, that array read with the positions left out (<see cref="AvailableList"/>), no array of the cluster's size.
/// Any other policy's list is filtered as it comes.
/// <para>
/// For the built-in policies it also keeps, per list of all destinations, what it found for each (unhealthy, out of
/// service) in a flat array. When the change was announced (<see cref="AvailabilityChanges"/>), only the destinations
/// announced are read again, and the new list is built from that array: a pass over every destination object of a
/// large cluster (its health, its id: a cache miss each, tenths of a millisecond at 10,000) is left to changes no one
/// announced, a new list of destinations (a reload) or a new cluster config.
/// </para>
/// </remarks>
internal sealed class RuntimeAvailableDestinations(IAvailableDestinationsPolicy inner, RuntimeOverrides overrides, AvailabilityChanges? changes = null) : IAvailableDestinationsPolicy
{
    private const string HealthyOrPanic = "HealthyOrPanic";
    private const string HealthyAndUnknown = "HealthyAndUnknown";

    /// <summary>Up to this many out of service, each id is compared rather than hashed (the usual case is one or two).</summary>
    private const int CompareUpTo = 8;

    private const byte Unhealthy = 1;
    private const byte OutOfServiceFlag = 2;

    // Keyed by YARP's list of all destinations, which a reload replaces: the flags go with the list they describe.
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<IReadOnlyList<DestinationState>, Known> _known = new();

    private int _fullPasses;

    public string Name => inner.Name;

    /// <summary>Computations that looked at every destination of a cluster: the work tests bound, rather than time.</summary>
    internal int FullPasses => Volatile.Read(ref _fullPasses);

    // (sic): the interface member is spelt this way in YARP 2.3.
    public IReadOnlyList<DestinationState> GetAvailalableDestinations(ClusterConfig config, IReadOnlyList<DestinationState> allDestinations)
    {
        var panic = string.Equals(inner.Name, HealthyOrPanic, StringComparison.OrdinalIgnoreCase);
        if (!panic && !string.Equals(inner.Name, HealthyAndUnknown, StringComparison.OrdinalIgnoreCase))
        {
            return InService(inner.GetAvailalableDestinations(config, allDestinations), OutOfService.Of(overrides.OutOfService(config.ClusterId)));
        }

        var known = _known.GetValue(allDestinations, static list => new Known(list));
        lock (known.Gate)
        {
            // Nothing pending while this thread announced a change: a computation on another thread took it, and read it.
            var changed = changes?.Take(config.ClusterId, known.Changed) ?? -1;
            if (known.IsFor(config) && (changed > 0 || (changed == 0 && changes!.IsAnnouncingFor(config.ClusterId))))
            {
                return known.Update(config, overrides, changed, panic);
            }

            Interlocked.Increment(ref _fullPasses);
            return known.Recompute(config, OutOfService.Of(overrides.OutOfService(config.ClusterId)), panic);
        }
    }

    /// <summary>YARP's rule: neither the active nor the passive state (of the checks enabled) is Unhealthy.</summary>
    private static bool Healthy(DestinationState destination, bool active, bool passive)
    {
        var health = destination.Health;
        return !(active && health.Active == DestinationHealth.Unhealthy) && !(passive && health.Passive == DestinationHealth.Unhealthy);
    }

    /// <summary><paramref name="available"/> without the destinations out of service, in order; the list itself when none is in it.</summary>
    private static IReadOnlyList<DestinationState> InService(IReadOnlyList<DestinationState> available, OutOfService outOfService)
    {
        if (outOfService.IsEmpty)
        {
            return available;
        }

        var kept = 0;
        for (var i = 0; i < available.Count; i++)
        {
            kept += outOfService.Contains(available[i].DestinationId) ? 0 : 1;
        }

        if (kept == available.Count)
        {
            return available;
        }

        var inService = new DestinationState[kept];
        var next = 0;
        for (var i = 0; i < available.Count; i++)
        {
            if (!outOfService.Contains(available[i].DestinationId))
            {
                inService[next++] = available[i];
            }
        }

        return inService;
    }

    /// <summary>
    /// What the last computation over one list of all destinations found: a flag byte per destination (unhealthy, out
    /// of service), the counts, and the list it returned. Guarded by <see cref="Gate"/>; YARP runs one computation of a
    /// cluster at a time anyway.
    /// </summary>
    private sealed class Known(IReadOnlyList<DestinationState> all)
    {
        // The list's destinations, copied once: finding an announced one scans references, never the objects.
        private DestinationState[]? _destinations;
        private byte[]? _flags;
        private int _healthy;
        private int _inService;
        private int _kept;
        private ClusterConfig? _config;
        private bool _active;
        private bool _passive;
        private IReadOnlyList<DestinationState>? _result;

        public Lock Gate { get; } = new();

        /// <summary>Where the announced changes are taken to.</summary>
        public DestinationState[] Changed { get; } = new DestinationState[AvailabilityChanges.MaxPending];

        /// <summary>Whether the flags were computed under <paramref name="config"/> (its health checks, its policy).</summary>
        public bool IsFor(ClusterConfig config) => _result is not null && ReferenceEquals(config, _config);

        /// <summary>Every destination looked at: health, and its id when any is out of service.</summary>
        [MethodImpl(PerChangeCode.Optimized)]
        public IReadOnlyList<DestinationState> Recompute(ClusterConfig config, OutOfService outOfService, bool panic)
        {
            // The copy is handed out as the available list when every destination is available, so it is never changed:
            // a caller that changed the list in place (YARP never does) gets a new one. Compared by reference only.
            var count = all.Count;
            if (_destinations is null || !Holds(_destinations, all))
            {
                _destinations = [.. all];
                _flags = new byte[count];
            }

            Array.Clear(Changed);
            _config = config;
            _active = config.HealthCheck?.Active?.Enabled == true;
            _passive = config.HealthCheck?.Passive?.Enabled == true;
            var checks = _active || _passive;
            var flags = _flags!;
            int healthy = 0, inService = 0, kept = 0;
            for (var i = 0; i < count; i++)
            {
                var destination = _destinations[i];
                var flag = (byte)((checks && !Healthy(destination, _active, _passive) ? Unhealthy : 0)
                    | (!outOfService.IsEmpty && outOfService.Contains(destination.DestinationId) ? OutOfServiceFlag : 0));
                flags[i] = flag;
                healthy += (flag & Unhealthy) == 0 ? 1 : 0;
                inService += (flag & OutOfServiceFlag) == 0 ? 1 : 0;
                kept += flag == 0 ? 1 : 0;
            }

            (_healthy, _inService, _kept) = (healthy, inService, kept);
            return _result = Build(panic);
        }

        /// <summary>Only the <paramref name="changed"/> destinations announced (in <see cref="Changed"/>) looked at again; none, the list returned last time.</summary>
        [MethodImpl(PerChangeCode.Optimized)]
        public IReadOnlyList<DestinationState> Update(ClusterConfig config, RuntimeOverrides overrides, int changed, bool panic)
        {
            var destinations = _destinations!;
            var flags = _flags!;
            var moved = false;
            for (var k = 0; k < changed; k++)
            {
                var destination = Changed[k];
                Changed[k] = null!;
                var i = IndexOf(destinations, destination);
                if (i < 0)
                {
                    // Not in this list (removed by a reload since it was announced): nothing of this list changed.
                    continue;
                }

                var flag = (byte)(((_active || _passive) && !Healthy(destination, _active, _passive) ? Unhealthy : 0)
                    | (overrides.ModeOf(config.ClusterId, destination.DestinationId) != AdminMode.Active ? OutOfServiceFlag : 0));
                var was = flags[i];
                if (flag == was)
                {
                    continue;
                }

                flags[i] = flag;
                moved = true;
                _healthy += ((flag & Unhealthy) == 0 ? 1 : 0) - ((was & Unhealthy) == 0 ? 1 : 0);
                _inService += ((flag & OutOfServiceFlag) == 0 ? 1 : 0) - ((was & OutOfServiceFlag) == 0 ? 1 : 0);
                _kept += (flag == 0 ? 1 : 0) - (was == 0 ? 1 : 0);
            }

            // Nothing moved in or out (a drain of a destination already down): the list returned last time still holds.
            return moved ? _result = Build(panic) : _result!;
        }

        /// <summary>
        /// YARP's rule over the flags: the healthy in service, or with <c>HealthyOrPanic</c> and none healthy, all in service.
        /// When that is every destination, the one array of them made for this list: the policies hold an array of the
        /// cluster's own as it is, where they would copy YARP's list (tens of KB at 10,000, on every change that brings the
        /// last destination back). When all but a few, a list read through that array (<see cref="AvailableList"/>).
        /// </summary>
        [MethodImpl(PerChangeCode.Optimized)]
        private IReadOnlyList<DestinationState> Build(bool panic)
        {
            var mask = _healthy == 0 && panic ? OutOfServiceFlag : (byte)(Unhealthy | OutOfServiceFlag);
            var count = mask == OutOfServiceFlag ? _inService : _kept;
            if (count == _destinations!.Length)
            {
                return _destinations;
            }

            var flags = _flags!;
            if (_destinations.Length - count <= AvailableList.MaxLeftOut)
            {
                var leftOut = new int[_destinations.Length - count];
                for (int i = 0, left = 0; left < leftOut.Length; i++)
                {
                    if ((flags[i] & mask) != 0)
                    {
                        leftOut[left++] = i;
                    }
                }

                return new AvailableList(_destinations, leftOut);
            }

            var available = new DestinationState[count];
            var next = 0;
            for (var i = 0; next < count; i++)
            {
                if ((flags[i] & mask) == 0)
                {
                    available[next++] = _destinations[i];
                }
            }

            return available;
        }

        [MethodImpl(PerChangeCode.Optimized)]
        private static bool Holds(DestinationState[] destinations, IReadOnlyList<DestinationState> list)
        {
            if (destinations.Length != list.Count)
            {
                return false;
            }

            for (var i = 0; i < destinations.Length; i++)
            {
                if (!ReferenceEquals(destinations[i], list[i]))
                {
                    return false;
                }
            }

            return true;
        }

        [MethodImpl(PerChangeCode.Optimized)]
        private static int IndexOf(DestinationState[] destinations, DestinationState destination)
        {
            for (var i = 0; i < destinations.Length; i++)
            {
                if (ReferenceEquals(destinations[i], destination))
                {
                    return i;
                }
            }

            return -1;
        }
    }

    /// <summary>The ids taken out of service: a few compared one by one (no hashing of every id in a large cluster), more looked up.</summary>
    private readonly struct OutOfService
    {
        private readonly string[]? _few;
        private readonly HashSet<string>? _many;

        private OutOfService(string[]? few, HashSet<string>? many)
        {
            _few = few;
            _many = many;
        }

        public bool IsEmpty => _few is null && _many is null;

        public static OutOfService Of(HashSet<string>? ids) =>
            ids is null || ids.Count == 0 ? default
            : ids.Count <= CompareUpTo ? new([.. ids], null)
            : new(null, ids);

        public bool Contains(string id)
        {
            if (_few is { } few)
            {
                foreach (var other in few)
                {
                    if (string.Equals(id, other, StringComparison.OrdinalIgnoreCase))
                    {
                        return true;
                    }
                }

                return false;
            }

            return _many?.Contains(id) == true;
        }
    }
}
