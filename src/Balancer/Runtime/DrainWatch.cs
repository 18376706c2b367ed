using System.Collections.Concurrent;
using Yarp.ReverseProxy.Model;

namespace Balancer.Runtime;

/// <summary>
/// Logs the moment a drained destination's last request in flight ends. The state itself needs no watcher
/// (<c>Draining</c> or <c>Drained</c> is read from the in-flight count whenever it is shown); this is for the
/// operator reading the log during a deploy. YARP raises no event when a request ends, so it polls, and only
/// while a drain is in progress.
/// </summary>
internal sealed partial class DrainWatch(RuntimeOverrides overrides, TimeProvider time, ILogger<DrainWatch> logger) : IDisposable
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);
    private readonly ConcurrentDictionary<DestinationState, Watched> _watched = new();

    public void Watch(ClusterState cluster, DestinationState destination)
    {
        var watched = new Watched(this, cluster, destination, time.GetTimestamp());
        if (_watched.TryAdd(destination, watched))
        {
            watched.Start(time);
        }
    }

    public void Dispose()
    {
        foreach (var watched in _watched.Values)
        {
            watched.Dispose();
        }

        _watched.Clear();
    }

    private void Check(Watched watched)
    {
        var (cluster, destination) = (watched.Cluster, watched.Destination);
        var mode = overrides.ModeOf(cluster.ClusterId, destination.DestinationId);
        if (mode == AdminMode.Active)
        {
            Stop(watched);
        }
        else if (destination.ConcurrentRequestCount == 0)
        {
            Stop(watched);
            LogDrained(logger, cluster.ClusterId, destination.DestinationId, time.GetElapsedTime(watched.Since).TotalSeconds);
        }
    }

    private void Stop(Watched watched)
    {
        if (_watched.TryRemove(new KeyValuePair<DestinationState, Watched>(watched.Destination, watched)))
        {
            watched.Dispose();
        }
    }

    [LoggerMessage(EventId = 7121, Level = LogLevel.Information, Message = "Destination {Cluster}/{Destination} is drained: no request in flight, {Seconds:0.0} s after the drain began")]
    private static partial void LogDrained(ILogger logger, string cluster, string destination, double seconds);

    private sealed class Watched(DrainWatch owner, ClusterState cluster, DestinationState destination, long since) : IDisposable
    {
        private ITimer? _timer;

        public ClusterState Cluster { get; } = cluster;

        public DestinationState Destination { get; } = destination;

        public long Since { get; } = since;

        public void Start(TimeProvider time) =>
            _timer = time.CreateTimer(static state => ((Watched)state!).Tick(), this, Interval, Interval);

        public void Dispose() => _timer?.Dispose();

        private void Tick() => owner.Check(this);
    }
}
