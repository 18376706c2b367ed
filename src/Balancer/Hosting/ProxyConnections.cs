using System.Text;
using Balancer.Telemetry;
using Microsoft.AspNetCore.Connections;
using Prometheus;

namespace Balancer.Hosting;

/// <summary>
/// Counts the proxy listener's open client connections, turns away those over
/// <see cref="LimitsOptions.MaxConcurrentConnections"/> with a <c>503</c>, and closes a new connection
/// that sends nothing within <see cref="LimitsOptions.RequestHeadersTimeout"/>.
/// </summary>
/// <remarks>
/// Kestrel's own <c>MaxConcurrentConnections</c> is one counter for every listener: a flood on the proxy
/// port would then lock out the management port too, and with it the metrics and the status page an
/// operator needs to see the flood. Kestrel also closes a connection over its limit without a word; a
/// <c>503</c> tells the client what happened. And Kestrel gives a new connection that has sent nothing
/// the keep-alive timeout (75 s), so a client could hold slots by connecting and staying silent; NGINX
/// starts <c>client_header_timeout</c> at accept, and so does this. Per connection, never per request.
/// </remarks>
internal sealed class ProxyConnections
{
    private const string RejectionBody = "503 Service Unavailable: too many connections are open.\n";

    private static readonly byte[] Rejection = Encoding.ASCII.GetBytes(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\nConnection: close\r\n" +
        $"Content-Length: {RejectionBody.Length}\r\n\r\n{RejectionBody}");

    /// <summary>How long a turned-away client gets to read the answer and close first (see <see cref="RejectAsync"/>).</summary>
    private static readonly TimeSpan Linger = TimeSpan.FromSeconds(2);

    private readonly Counter _rejected;
    private int _open;
    private int _lingering;
    private int _limit = int.MaxValue;
    private TimeSpan _firstByteTimeout = Timeout.InfiniteTimeSpan;

    public ProxyConnections(BalancerMetricsRegistry metrics)
    {
        var open = metrics.Factory.CreateGauge("balancer_proxy_connections", "Client connections open on the proxy listener now.");
        _rejected = metrics.Factory.CreateCounter(
            "balancer_proxy_connections_rejected_total",
            "Client connections answered 503 and closed because Balancer:Limits:MaxConcurrentConnections were already open.");
        metrics.Registry.AddBeforeCollectCallback(() => open.Set(Volatile.Read(ref _open)));
    }

    public int Open => Volatile.Read(ref _open);

    public long Rejected => (long)_rejected.Value;

    /// <summary>
    /// The connection middleware for the proxy listener: at most <paramref name="limit"/> open connections,
    /// each of which must send its first byte within <paramref name="firstByteTimeout"/>.
    /// </summary>
    public Func<ConnectionDelegate, ConnectionDelegate> Middleware(int limit, TimeSpan firstByteTimeout)
    {
        _limit = limit;
        // A timer cannot run longer than int.MaxValue ms (24.8 days); anything that long means "never".
        _firstByteTimeout = firstByteTimeout.TotalMilliseconds < int.MaxValue ? firstByteTimeout : Timeout.InfiniteTimeSpan;
        return next => connection => HandleAsync(next, connection);
    }

    private async Task HandleAsync(ConnectionDelegate next, ConnectionContext connection)
    {
        if (connection.Features.Get<AcceptedOnSpareDescriptor>() is not null)
        {
            // The process is at its open-file limit: answer and give the descriptor back at once.
            _rejected.Inc();
            await RejectAsync(connection, linger: false);
            return;
        }

        if (Interlocked.Increment(ref _open) > _limit)
        {
            Interlocked.Decrement(ref _open);
            _rejected.Inc();
            // Each lingering rejection holds a descriptor; past the share kept for them, close at once.
            var linger = Interlocked.Increment(ref _lingering) <= DescriptorBudget.LingeringRejections;
            try
            {
                await RejectAsync(connection, linger);
            }
            finally
            {
                Interlocked.Decrement(ref _lingering);
            }

            return;
        }

        try
        {
            if (await FirstByteArrivesAsync(connection))
            {
                await next(connection);
            }
        }
        finally
        {
            Interlocked.Decrement(ref _open);
        }
    }

    /// <summary>Waits for the client's first bytes without consuming them: Kestrel reads them next.</summary>
    private async Task<bool> FirstByteArrivesAsync(ConnectionContext connection)
    {
        using var timeout = new CancellationTokenSource(_firstByteTimeout);
        try
        {
            var input = connection.Transport.Input;
            var read = await input.ReadAsync(timeout.Token);
            input.AdvanceTo(read.Buffer.Start);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        catch (Exception e) when (e is IOException or ConnectionResetException or ConnectionAbortedException)
        {
            return false;
        }
    }

    /// <summary>
    /// Writes the 503, then (with <paramref name="linger"/>) reads and drops what the client sends until it
    /// closes, for a short while: closing a socket with unread request bytes makes the kernel send a reset,
    /// which can reach the client before it has read the answer.
    /// </summary>
    private static async Task RejectAsync(ConnectionContext connection, bool linger)
    {
        using var timeout = new CancellationTokenSource(Linger);
        try
        {
            await connection.Transport.Output.WriteAsync(Rejection, timeout.Token);
            if (!linger)
            {
                return;
            }

            var input = connection.Transport.Input;
            while (true)
            {
                var read = await input.ReadAsync(timeout.Token);
                input.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted || read.IsCanceled)
                {
                    return;
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ConnectionResetException or ConnectionAbortedException)
        {
            // The client did not close in time, or went away first: nothing more to tell it.
        }
    }
}
