using System.Net.Sockets;
using System.Text;

namespace Balancer.Tests.Infrastructure;

/// <summary>
/// Bytes on a plain TCP socket: for requests no HTTP client library would send (a malformed request
/// line, a header block cut short) and for watching when the server closes the connection.
/// </summary>
internal sealed class RawHttp : IDisposable
{
    private readonly TcpClient _client;
    private readonly NetworkStream _stream;

    private RawHttp(TcpClient client)
    {
        _client = client;
        _stream = client.GetStream();
    }

    public static async Task<RawHttp> ConnectAsync(Uri address)
    {
        var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync(address.Host, address.Port);
        return new RawHttp(client);
    }

    /// <summary>Sends <paramref name="request"/> on a new connection and reads until the server closes it.</summary>
    public static async Task<string> ExchangeAsync(Uri address, string request, TimeSpan? timeout = null)
    {
        using var raw = await ConnectAsync(address);
        await raw.SendAsync(request);
        return await raw.ReadToCloseAsync(timeout ?? TimeSpan.FromSeconds(10));
    }

    public Task SendAsync(string text) => _stream.WriteAsync(Encoding.ASCII.GetBytes(text)).AsTask();

    /// <summary>Everything the server sends until it closes; throws if it is still open after <paramref name="timeout"/>.</summary>
    public async Task<string> ReadToCloseAsync(TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        var received = new MemoryStream();
        var buffer = new byte[16 * 1024];
        try
        {
            int read;
            while ((read = await _stream.ReadAsync(buffer, deadline.Token)) > 0)
            {
                received.Write(buffer, 0, read);
            }
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"The server kept the connection open for {timeout.TotalSeconds:0.#} s; received so far: {Encoding.ASCII.GetString(received.ToArray())}");
        }
        catch (IOException)
        {
            // Reset after the answer: what arrived before it is the answer.
        }

        return Encoding.ASCII.GetString(received.ToArray());
    }

    public void Dispose()
    {
        _stream.Dispose();
        _client.Dispose();
    }
}
