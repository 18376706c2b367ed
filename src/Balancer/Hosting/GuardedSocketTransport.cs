using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Options;

namespace Balancer.Hosting;

/// <summary>
/// Kestrel's socket transport with an accept loop that survives running out of descriptors. Kestrel's own
/// loop treats every accept error as a connection reset in the backlog and retries at once: at the
/// open-file limit that is a busy loop throwing an exception per turn, which starves the thread pool; the
/// runtime then tries to add a thread, cannot get the descriptors for it and aborts the process.
/// </summary>
/// <remarks>
/// Here an accept that fails for want of descriptors is counted and logged (rate-limited), gives back a
/// spare descriptor from <see cref="DescriptorReserve"/> so the waiting client can be accepted and answered,
/// and waits a little (up to <see cref="MaxBackoff"/>) when no spare is left. Connections themselves are
/// Kestrel's (<see cref="SocketConnectionContextFactory"/>), with the same transport options.
/// </remarks>
internal sealed class GuardedSocketTransportFactory : IConnectionListenerFactory, IConnectionListenerFactorySelector, IDisposable
{
    private static readonly TimeSpan MinBackoff = TimeSpan.FromMilliseconds(5);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromMilliseconds(200);

    private readonly SocketTransportOptions _options;
    private readonly DescriptorReserve _reserve;
    private readonly LocalSocketErrors _errors;
    private readonly SocketConnectionContextFactory _connections;
    private readonly ILogger? _movedAddressLogger;
    private readonly ListeningSockets _listening;

    public GuardedSocketTransportFactory(IOptions<SocketTransportOptions> options, IOptions<Configuration.BalancerOptions> balancer, DescriptorReserve reserve, LocalSocketErrors errors, ListeningSockets listening, ILoggerFactory loggers)
    {
        _listening = listening;
        _options = options.Value;
        _movedAddressLogger = balancer.Value.Shutdown.FloatingAddress ? loggers.CreateLogger(typeof(Readiness.MovedAddressAnswers)) : null;
        _reserve = reserve;
        _errors = errors;
        _connections = new SocketConnectionContextFactory(
            new SocketConnectionFactoryOptions
            {
                IOQueueCount = _options.IOQueueCount,
                WaitForDataBeforeAllocatingBuffer = _options.WaitForDataBeforeAllocatingBuffer,
                MaxReadBufferSize = _options.MaxReadBufferSize,
                MaxWriteBufferSize = _options.MaxWriteBufferSize,
                UnsafePreferInlineScheduling = _options.UnsafePreferInlineScheduling,
            },
            loggers.CreateLogger("Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets"));
    }

    /// <summary>TCP endpoints only; Unix sockets and inherited handles stay with Kestrel's transport.</summary>
    public bool CanBind(EndPoint endpoint) => endpoint is IPEndPoint;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        Socket socket;
        try
        {
            socket = _options.CreateBoundListenSocket(endpoint);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            // What Kestrel's own transport throws, so that Kestrel reports the address it could not bind.
            throw new AddressInUseException(e.Message, e);
        }

        try
        {
            if (_movedAddressLogger is not null)
            {
                Readiness.MovedAddressAnswers.Allow(socket, _movedAddressLogger);
            }

            socket.Listen(_options.Backlog);
            _listening.Add(socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return ValueTask.FromResult<IConnectionListener>(new Listener(this, socket));
    }

    public void Dispose() => _connections.Dispose();

    private sealed class Listener(GuardedSocketTransportFactory factory, Socket socket) : IConnectionListener
    {
        public EndPoint EndPoint { get; } = socket.LocalEndPoint!;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            var backoff = MinBackoff;
            var onSpare = false;
            while (true)
            {
                Socket accepted;
                try
                {
                    accepted = await socket.AcceptAsync(cancellationToken);
                }
                catch (Exception e) when (e is ObjectDisposedException or OperationCanceledException
                    || e is SocketException { SocketErrorCode: SocketError.OperationAborted })
                {
                    return null;
                }
                catch (SocketException e) when (LocalSocketErrors.IsLocal(e.SocketErrorCode))
                {
                    factory._errors.Record(LocalSocketErrors.Accept, e);
                    if (factory._reserve.TryRelease())
                    {
                        onSpare = true;
                        continue;
                    }

                    if (!await WaitAsync(backoff, cancellationToken))
                    {
                        return null;
                    }

                    backoff = backoff * 2 < MaxBackoff ? backoff * 2 : MaxBackoff;
                    continue;
                }
                catch (SocketException)
                {
                    // Reset while it waited in the backlog: take the next one.
                    continue;
                }

                if (accepted.LocalEndPoint is IPEndPoint)
                {
                    accepted.NoDelay = factory._options.NoDelay;
                }

                var connection = factory._connections.Create(accepted);
                if (onSpare)
                {
                    connection.Features.Set(AcceptedOnSpareDescriptor.Instance);
                }
                else
                {
                    factory._reserve.Refill();
                }

                return connection;
            }
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            factory._listening.Remove(socket);
            socket.Dispose();
            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync()
        {
            factory._listening.Remove(socket);
            socket.Dispose();
            return ValueTask.CompletedTask;
        }

        private static async Task<bool> WaitAsync(TimeSpan delay, CancellationToken cancellationToken)
        {
            try
            {
                await Task.Delay(delay, cancellationToken);
                return true;
            }
            catch (OperationCanceledException)
            {
                return false;
            }
        }
    }
}

internal static class TransportServiceCollectionExtensions
{
    /// <summary>
    /// The guarded socket transport for TCP listeners, the spare descriptors and the local socket error
    /// count. Registered after Kestrel's own transport, which it takes precedence over.
    /// </summary>
    public static IServiceCollection AddBalancerTransport(this IServiceCollection services)
    {
        services.AddSingleton<DescriptorReserve>();
        services.AddSingleton<LocalSocketErrors>();
        services.AddSingleton<BackendSockets>();
        services.AddSingleton<ListeningSockets>();
        services.AddSingleton<IConnectionListenerFactory, GuardedSocketTransportFactory>();
        return services;
    }
}
