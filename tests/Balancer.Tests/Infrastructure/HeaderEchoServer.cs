using System.Text;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Balancer.Tests.Infrastructure;

/// <summary>
/// A real Kestrel backend on a loopback port chosen by the OS that answers every request with the request
/// headers it received, one <c>Name: value</c> line each, and sends a response field it names in its own
/// <c>Connection</c> header (<c>X-Hop-Response</c>) beside an ordinary one (<c>X-End-To-End</c>).
/// </summary>
internal sealed class HeaderEchoServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private HeaderEchoServer(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
    }

    public Uri Address { get; }

    public static async Task<HeaderEchoServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        app.Run(async context =>
        {
            var text = new StringBuilder();
            foreach (var (name, values) in context.Request.Headers)
            {
                foreach (var value in values)
                {
                    text.Append(name).Append(": ").Append(value).Append('\n');
                }
            }

            if (context.Request.ContentLength is > 0)
            {
                using var reader = new StreamReader(context.Request.Body);
                text.Append("Body: ").Append(await reader.ReadToEndAsync()).Append('\n');
            }

            context.Response.Headers.Connection = "X-Hop-Response";
            context.Response.Headers["X-Hop-Response"] = "for the balancer only";
            context.Response.Headers["X-End-To-End"] = "for the client";
            context.Response.ContentType = "text/plain";
            var body = Encoding.UTF8.GetBytes(text.ToString());
            // A length rather than chunks, so a raw client can read the body as it is.
            context.Response.ContentLength = body.Length;
            await context.Response.Body.WriteAsync(body);
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return new HeaderEchoServer(app, new Uri(address + "/"));
    }

    /// <summary>The request headers as the echo listed them, by name (case-insensitive), values in order.</summary>
    public static Dictionary<string, List<string>> ParseEcho(string body)
    {
        var headers = new Dictionary<string, List<string>>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in body.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var colon = line.IndexOf(": ", StringComparison.Ordinal);
            if (colon > 0)
            {
                var name = line[..colon];
                (headers.TryGetValue(name, out var list) ? list : headers[name] = []).Add(line[(colon + 2)..]);
            }
        }

        return headers;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
