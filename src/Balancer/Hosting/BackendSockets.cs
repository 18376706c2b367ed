using System.Net.Sockets;

namespace Balancer.Hosting;

/// <summary>
/// Counts the sockets open to backends (busy or idle in a connection pool) and refuses a new one past the
/// share of descriptors the <see cref="DescriptorBudget"/> gives them: one per proxy connection, plus a few
/// for health probes. Past it a request fails as the balancer's own shortage (<c>503</c>, never blamed on
/// the destination) instead of taking the descriptors the runtime needs to keep the process alive.
/// </summary>
/// <remarks>
/// One HTTP/1.1 client connection needs at most one backend connection at a time, but HTTP/2 clients
/// multiplex, and idle pooled connections to one destination cannot serve another; so the proxy
/// connection limit alone does not bound them.
/// </remarks>
internal sealed class BackendSockets
{
    /// <summary>Beyond one per proxy connection: each destination's health probe may hold one too.</summary>
    public const int ProbeAllowance = 32;

    private int _open;
    private int _limit = int.MaxValue;

    public int Open => Volatile.Read(ref _open);

    public int Limit => Volatile.Read(ref _limit);

    public void SetLimit(int proxyConnections) =>
        Volatile.Write(ref _limit, proxyConnections > int.MaxValue - ProbeAllowance ? int.MaxValue : proxyConnections + ProbeAllowance);

    /// <summary>Takes a slot, or throws the same error the operating system gives at the open-file limit.</summary>
    public void Acquire()
    {
        if (Interlocked.Increment(ref _open) > Volatile.Read(ref _limit))
        {
            Interlocked.Decrement(ref _open);
            throw new SocketException((int)SocketError.TooManyOpenSockets);
        }
    }

    public void Release() => Interlocked.Decrement(ref _open);

    /// <summary>A connected socket's stream that gives its slot back once, when disposed.</summary>
    public Stream Wrap(Socket socket) => new CountedStream(socket, this);

    private sealed class CountedStream(Socket socket, BackendSockets owner) : NetworkStream(socket, ownsSocket: true)
    {
        private int _released;

        protected override void Dispose(bool disposing)
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                owner.Release();
            }

            base.Dispose(disposing);
        }
    }
}
