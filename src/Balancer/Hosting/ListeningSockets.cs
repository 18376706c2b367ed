using System.Net;
using System.Net.Sockets;

namespace Balancer.Hosting;

/// <summary>The TCP listening sockets the transport has bound and not yet closed, for what acts on all of them at once.</summary>
internal sealed class ListeningSockets
{
    private readonly Lock _lock = new();
    private readonly List<Socket> _sockets = [];

    public void Add(Socket socket)
    {
        lock (_lock)
        {
            _sockets.Add(socket);
        }
    }

    public void Remove(Socket socket)
    {
        lock (_lock)
        {
            _sockets.Remove(socket);
        }
    }

    /// <summary>The sockets bound to one of <paramref name="ports"/>.</summary>
    public IReadOnlyList<Socket> On(IReadOnlySet<int> ports)
    {
        lock (_lock)
        {
            return [.. _sockets.Where(s => s.LocalEndPoint is IPEndPoint bound && ports.Contains(bound.Port))];
        }
    }
}
