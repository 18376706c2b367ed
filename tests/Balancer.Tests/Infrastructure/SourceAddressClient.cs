using System.Net;
using System.Net.Sockets;

namespace Balancer.Tests.Infrastructure;

/// <summary>
/// An HTTP client whose connections leave from a chosen loopback address (127.0.1.x), so one test
/// process can act as many client IPs. Every request uses a fresh connection.
/// </summary>
internal sealed class SourceAddressClient : IDisposable
{
    private readonly HttpClient _client;

    public SourceAddressClient(IPAddress source)
    {
        var handler = new SocketsHttpHandler
        {
            PooledConnectionLifetime = TimeSpan.Zero,
            ConnectCallback = async (context, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    socket.Bind(new IPEndPoint(source, 0));
                    await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        _client = new HttpClient(handler);
    }

    public async Task<HttpResponseMessage> GetAsync(Uri uri, IEnumerable<KeyValuePair<string, string>>? headers = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, uri);
        request.Headers.ConnectionClose = true;
        foreach (var (name, value) in headers ?? [])
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        return await _client.SendAsync(request);
    }

    public async Task<string> GetBackendAsync(Uri uri, IEnumerable<KeyValuePair<string, string>>? headers = null)
    {
        using var response = await GetAsync(uri, headers);
        response.EnsureSuccessStatusCode();
        return response.Headers.GetValues("X-Backend").Single();
    }

    public void Dispose() => _client.Dispose();
}
