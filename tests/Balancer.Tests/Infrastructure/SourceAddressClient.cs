using System.Net;

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
        // The bench's handler binds each connection to the source address; every request gets a fresh connection here.
        var handler = Bench.Load.LoadClient.Handler(source);
        handler.PooledConnectionLifetime = TimeSpan.Zero;
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
