using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Bench.Processes;

/// <summary>
/// An OTLP/HTTP collector that accepts every export and throws it away, in the harness process: the
/// balancer's exporter then does all its work (serialise, send, get 200) without a real collector's CPU
/// on the machine. Counts what it was sent, so the report can show the exporter was busy.
/// </summary>
internal sealed class OtlpSink : IAsyncDisposable
{
    private readonly WebApplication _app;
    private long _exports;
    private long _bytes;

    private OtlpSink(WebApplication app) => _app = app;

    public Uri Url { get; private set; } = null!;

    public long Exports => Interlocked.Read(ref _exports);

    public long Bytes => Interlocked.Read(ref _bytes);

    /// <param name="keep">Given each export's path and body, when the caller wants them (the tests do); otherwise bodies are only counted.</param>
    public static async Task<OtlpSink> StartAsync(Action<string, byte[]>? keep = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var sink = new OtlpSink(builder.Build());
        sink._app.Run(async context =>
        {
            using var body = keep is null ? Stream.Null : new MemoryStream();
            var counting = new byte[16 * 1024];
            long read = 0;
            int n;
            while ((n = await context.Request.Body.ReadAsync(counting)) > 0)
            {
                read += n;
                body.Write(counting, 0, n);
            }

            Interlocked.Add(ref sink._bytes, read);
            Interlocked.Increment(ref sink._exports);
            keep?.Invoke(context.Request.Path.Value ?? string.Empty, ((MemoryStream)body).ToArray());
            context.Response.ContentType = "application/x-protobuf";
        });
        await sink._app.StartAsync();
        sink.Url = new Uri(sink._app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());
        return sink;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
