using System.Net.Sockets;
using Balancer.Configuration;
using Balancer.Hosting;
using Microsoft.Extensions.Options;

namespace Balancer.Readiness;

/// <summary>
/// Gives the floating address to the peer without a connection caught half-way (<c>Balancer:Shutdown:TrackFile</c>).
/// A connection whose handshake the leaving holder completed just before keepalived removed the address sends
/// its request after the move: the old holder no longer receives it, the new one resets it, and the client
/// gets an error although both balancers were healthy. So when the instance starts leaving (a signal, or an
/// operator's drain), the proxy listeners first stop taking new connections (the clients' connection attempts
/// are dropped, not refused, and their retransmission reaches the new holder), requests on connections already
/// open have <see cref="Settle"/> to arrive, and only then does the file tell keepalived to move the address,
/// which it does at once (track_file is watched, not polled). What arrived is still answered during the drain.
/// </summary>
internal sealed partial class AddressHandOver(
    IOptions<BalancerOptions> options,
    InstanceReadiness readiness,
    ListeningSockets sockets,
    Listeners listeners,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    ILogger<AddressHandOver> logger) : IHostedService, IDisposable
{
    /// <summary>
    /// From closing the listeners to releasing the address: long enough for a request (or a TLS handshake) on a
    /// connection opened just before to arrive; short enough that the peer holds the address before a dropped
    /// connection attempt is sent again (Linux retransmits a first SYN after 1 s).
    /// </summary>
    internal static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(300);

    private const string Hold = "0\n";
    private const string Release = "1\n";
    private readonly Lock _lock = new();
    private ITimer? _release;
    private bool _writable;
    private IReadOnlyList<Socket> _closed = [];

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (options.Value.Shutdown.TrackFile is { Length: > 0 })
        {
            // Once the listeners are bound: the track script on /readyz still decides when the address may come here.
            lifetime.ApplicationStarted.Register(() =>
            {
                lock (_lock)
                {
                    _writable = Write(Hold);
                }
            });
            readiness.SendingAwayChanged += OnSendingAwayChanged;
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose()
    {
        readiness.SendingAwayChanged -= OnSendingAwayChanged;
        lock (_lock)
        {
            _release?.Dispose();
        }
    }

    private void OnSendingAwayChanged()
    {
        lock (_lock)
        {
            // Without the file keepalived learns of the leave from the track script only, seconds later:
            // connection attempts would be dropped all that time.
            if (!_writable)
            {
                return;
            }

            _release?.Dispose();
            _release = null;
            if (readiness.SendingAway)
            {
                _closed = sockets.On(listeners.ProxyPorts());
                foreach (var socket in _closed)
                {
                    Filter(socket, NewConnectionFilter.Close);
                }

                LogHandingOver(logger, _closed.Count, Settle.TotalMilliseconds, options.Value.Shutdown.TrackFile!);
                _release = time.CreateTimer(static state => ((AddressHandOver)state!).Give(), this, Settle, Timeout.InfiniteTimeSpan);
            }
            else
            {
                foreach (var socket in _closed)
                {
                    Filter(socket, NewConnectionFilter.Open);
                }

                _closed = [];
                Write(Hold);
            }
        }
    }

    private void Give()
    {
        lock (_lock)
        {
            if (readiness.SendingAway)
            {
                Write(Release);
            }
        }
    }

    private void Filter(Socket socket, Action<Socket> change)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        try
        {
            change(socket);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            LogFilterFailed(logger, socket.LocalEndPoint?.ToString(), e.Message);
        }
    }

    /// <summary>Replaces the file whole, so keepalived never reads it half-written.</summary>
    private bool Write(string value)
    {
        var path = Path.GetFullPath(options.Value.Shutdown.TrackFile!);
        var temporary = path + ".new";
        try
        {
            File.WriteAllText(temporary, value);
            File.Move(temporary, path, overwrite: true);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogWriteFailed(logger, path, e.Message);
            return false;
        }
    }

    [LoggerMessage(EventId = 1313, Level = LogLevel.Information, Message = "Handing the floating address over: {Listeners} proxy listening sockets take no new connections; {TrackFile} says 1 in {SettleMs} ms (Balancer:Shutdown:TrackFile)")]
    private static partial void LogHandingOver(ILogger logger, int listeners, double settleMs, string trackFile);

    [LoggerMessage(EventId = 1314, Level = LogLevel.Error, Message = "Balancer:Shutdown:TrackFile: cannot write {Path} ({Reason}); keepalived moves the floating address only when its track script sees /readyz fail")]
    private static partial void LogWriteFailed(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 1315, Level = LogLevel.Warning, Message = "Balancer:Shutdown:TrackFile: cannot change whether {Endpoint} takes new connections ({Reason})")]
    private static partial void LogFilterFailed(ILogger logger, string? endpoint, string reason);
}
