namespace Balancer.Health;

/// <summary>One active health probe: when it was sent, its outcome, the time to its answer, and its status or error kind.</summary>
public sealed record ProbeRecord(DateTimeOffset Time, string Outcome, double? LatencyMs, int? StatusCode, string? Error)
{
    public const string Success = "Success";
    public const string Failure = "Failure";
}

/// <summary>A passive health event of a destination: ejected, kept in rotation despite a failure, or returned.</summary>
public sealed record PassiveEvent(DateTimeOffset Time, string Kind, string Reason)
{
    public const string Ejected = "Ejected";
    public const string KeptInRotation = "KeptInRotation";
    public const string Returned = "Returned";
}

/// <summary>A destination's recent health as the status API explains it.</summary>
public sealed record HealthExplanation(IReadOnlyList<ProbeRecord> Probes, IReadOnlyList<PassiveEvent> PassiveEvents, int Flaps);

/// <summary>
/// The recent health history of one destination: its last probes and passive events, and the times it flapped
/// between <c>Up</c> and <c>Down</c>. Every part is bounded, so a destination that flaps for days costs the
/// same memory as a quiet one.
/// </summary>
internal sealed class DestinationHealthLog
{
    public const int ProbesKept = 20;
    public const int EventsKept = 20;

    /// <summary>More flaps than this within the window are counted as this many.</summary>
    public const int FlapsKept = 1000;

    public static readonly TimeSpan FlapWindow = TimeSpan.FromMinutes(10);

    private readonly Lock _gate = new();
    private readonly Ring<KeptProbe> _probes = new(ProbesKept);
    private readonly Ring<PassiveEvent> _events = new(EventsKept);
    private readonly Ring<DateTimeOffset> _flaps = new(FlapsKept);

    // The last of Up or Down since the destination was first Up: a flap is a change between them, whatever
    // Unknown came in between (a passive failure expiring goes Down -> Unknown before the next probe says Up).
    // Until it has been Up once it is still being brought up, and a slow first probe is no flap.
    private string? _settled;

    public void AddProbe(ProbeRecord probe)
    {
        lock (_gate)
        {
            _probes.Add(new KeptProbe(probe));
        }
    }

    public void AddEvent(PassiveEvent passiveEvent)
    {
        lock (_gate)
        {
            _events.Add(passiveEvent);
        }
    }

    public void HealthChanged(string to, DateTimeOffset time)
    {
        if (to is not (DestinationHealthView.Up or DestinationHealthView.Down) || (_settled is null && to == DestinationHealthView.Down))
        {
            return;
        }

        lock (_gate)
        {
            if (_settled is not null && _settled != to)
            {
                _flaps.Add(time);
            }

            _settled = to;
        }
    }

    /// <summary>Probes and events newest first; flaps counted while less than <see cref="FlapWindow"/> old.</summary>
    public HealthExplanation Snapshot(DateTimeOffset now)
    {
        lock (_gate)
        {
            var flaps = 0;
            foreach (var time in _flaps.NewestFirst())
            {
                if (now - time >= FlapWindow)
                {
                    break;
                }

                flaps++;
            }

            return new HealthExplanation([.. _probes.NewestFirst().Select(p => p.ToRecord())], _events.NewestFirst(), flaps);
        }
    }

    /// <summary>
    /// A probe as kept: a struct of about 32 bytes rather than a record object of 72 and a reference, since a cluster of
    /// thousands of destinations keeps 20 of them for each. Probe times are UTC.
    /// </summary>
    private readonly struct KeptProbe(ProbeRecord probe)
    {
        private readonly long _utcTicks = probe.Time.UtcTicks;
        private readonly double _latencyMs = probe.LatencyMs ?? double.NaN;
        private readonly string? _error = probe.Error;
        private readonly int _statusCode = probe.StatusCode ?? -1;
        private readonly bool _success = probe.Outcome == ProbeRecord.Success;

        public ProbeRecord ToRecord() => new(
            new DateTimeOffset(_utcTicks, TimeSpan.Zero),
            _success ? ProbeRecord.Success : ProbeRecord.Failure,
            double.IsNaN(_latencyMs) ? null : _latencyMs,
            _statusCode < 0 ? null : _statusCode,
            _error);
    }

    /// <summary>
    /// A buffer of at most <c>capacity</c> items that drops its oldest to take a new one; not thread-safe. It grows
    /// as items come, so a destination that never flaps or gets ejected holds no array for them (a cluster
    /// of thousands of quiet destinations pays nothing for a log sized for the noisy one).
    /// </summary>
    private sealed class Ring<T>(int capacity)
    {
        private T[] _items = [];
        private int _next;
        private int _count;

        public void Add(T item)
        {
            if (_count == _items.Length && _items.Length < capacity)
            {
                // Still filling from index 0 (nothing was dropped yet), so the order survives the copy.
                Array.Resize(ref _items, Math.Min(capacity, Math.Max(4, _items.Length * 2)));
                _next = _count;
            }

            _items[_next] = item;
            _next = (_next + 1) % _items.Length;
            _count = Math.Min(_count + 1, _items.Length);
        }

        public T[] NewestFirst()
        {
            var result = new T[_count];
            for (var i = 0; i < _count; i++)
            {
                result[i] = _items[(_next - 1 - i + _items.Length) % _items.Length];
            }

            return result;
        }
    }
}
