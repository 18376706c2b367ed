using Balancer.Health;
using Balancer.PerDestination;
using Yarp.ReverseProxy.Model;

namespace Balancer.Resilience;

/// <summary>
/// One cancellation signal per destination, fired when the destination is marked Down (by an active probe, a
/// passive failure or an open circuit). Requests that are safe to send again and still wait for the
/// destination's response headers are linked to it (<see cref="RedispatchHandler"/>), so they leave a dead
/// or hung backend at once and the retry middleware sends them to another destination, instead of waiting
/// out the activity timeout.
/// </summary>
/// <remarks>
/// Each signal fires once and is replaced as it fires: a request sent to a destination that is already Down
/// (every destination down, so YARP uses them all) is withdrawn only by a later fall, never by the one before
/// it was sent.
/// </remarks>
internal sealed class DownSignals : IDisposable
{
    private static readonly SlotPart<Signal> SignalPart = new();
    private readonly DestinationSlots _slots;
    private readonly DestinationHealthTracker _tracker;

    public DownSignals(DestinationHealthTracker tracker, DestinationSlots? slots = null)
    {
        _slots = slots ?? new DestinationSlots();
        _tracker = tracker;
        tracker.HealthChanged += OnHealthChanged;
    }

    /// <summary>The destination slots the signals are kept in.</summary>
    internal DestinationSlots Slots => _slots;

    /// <summary>The signal of <paramref name="destination"/>: its token is cancelled when the destination is next marked Down.</summary>
    public Signal For(DestinationState destination) => _slots.Of(destination).GetOrAdd(SignalPart, 0, static _ => new Signal());

    /// <summary>Cancelled when <paramref name="destination"/> is next marked Down.</summary>
    public CancellationToken NextDown(DestinationState destination) => For(destination).Token;

    public void Dispose() => _tracker.HealthChanged -= OnHealthChanged;

    private void OnHealthChanged(ClusterState cluster, DestinationState destination, string from, string to)
    {
        if (to != DestinationHealthView.Down || _slots.Find(destination)?.Get(SignalPart) is not { } signal)
        {
            return;
        }

        // Raised under the tracker's lock: cancelling runs the requests' cancellation callbacks (sockets
        // closing), which belong on the thread pool.
        ThreadPool.UnsafeQueueUserWorkItem(static source => source.Cancel(), signal.Replace(), preferLocal: false);
    }

    /// <summary>One destination's signal.</summary>
    internal sealed class Signal
    {
        private CancellationTokenSource _source = new();

        public CancellationToken Token => Volatile.Read(ref _source).Token;

        /// <summary>Puts a fresh source in place and returns the one to cancel. Never disposed: it has no timer.</summary>
        internal CancellationTokenSource Replace() => Interlocked.Exchange(ref _source, new CancellationTokenSource());
    }
}
