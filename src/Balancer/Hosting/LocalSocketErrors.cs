using System.Net.Sockets;
using Balancer.Telemetry;
using Prometheus;

namespace Balancer.Hosting;

/// <summary>
/// The balancer's own failures to open a socket (out of descriptors, out of kernel buffers): counted in
/// <c>balancer_local_socket_errors_total{operation}</c> and logged at most once every
/// <see cref="LogInterval"/> with the number left out. They are never a destination's fault, so passive
/// health, the circuit breaker and the active probes leave them out.
/// </summary>
internal sealed partial class LocalSocketErrors
{
    public const string Accept = "accept";
    public const string Connect = "connect";
    public const string Probe = "probe";

    /// <summary>A client opening connections as fast as it can would otherwise write a line per attempt.</summary>
    public static readonly TimeSpan LogInterval = TimeSpan.FromSeconds(10);

    private readonly Counter _errors;
    private readonly TimeProvider _time;
    private readonly ILogger<LocalSocketErrors> _logger;
    private readonly Lock _gate = new();
    private long _nextLog;
    private long _suppressed;

    public LocalSocketErrors(BalancerMetricsRegistry metrics, TimeProvider time, ILogger<LocalSocketErrors> logger)
    {
        _time = time;
        _logger = logger;
        _errors = metrics.Factory.CreateCounter(
            "balancer_local_socket_errors_total",
            "Sockets the balancer could not open itself (too many open files, no buffer space), by what it was doing; never counted against a destination.",
            new CounterConfiguration { LabelNames = ["operation"] });
        foreach (var operation in new[] { Accept, Connect, Probe })
        {
            _errors.WithLabels(operation);
        }
    }

    public double Count(string operation) => _errors.WithLabels(operation).Value;

    /// <summary>True for EMFILE, ENFILE and ENOBUFS, anywhere in the exception's chain.</summary>
    public static bool IsLocal(Exception? exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is SocketException socket && IsLocal(socket.SocketErrorCode))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>.NET reports both EMFILE and ENFILE as <see cref="SocketError.TooManyOpenSockets"/>.</summary>
    public static bool IsLocal(SocketError error) => error is SocketError.TooManyOpenSockets or SocketError.NoBufferSpaceAvailable;

    public void Record(string operation, Exception exception)
    {
        _errors.WithLabels(operation).Inc();
        var now = _time.GetTimestamp();
        long suppressed;
        lock (_gate)
        {
            if (now < _nextLog)
            {
                _suppressed++;
                return;
            }

            _nextLog = now + (long)(LogInterval.TotalSeconds * _time.TimestampFrequency);
            suppressed = _suppressed;
            _suppressed = 0;
        }

        LogError(operation, Describe(exception), suppressed, LogInterval.TotalSeconds);
    }

    private static string Describe(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is SocketException socket)
            {
                return socket.Message;
            }
        }

        return exception.Message;
    }

    [LoggerMessage(EventId = 1601, Level = LogLevel.Warning,
        Message = "The balancer could not open a socket ({Operation}): {Error}. Not a destination's fault; {Suppressed} more like it in the previous {Seconds} s were not logged. Raise the open-file limit or lower Balancer:Limits:MaxConcurrentConnections.")]
    private partial void LogError(string operation, string error, long suppressed, double seconds);
}
