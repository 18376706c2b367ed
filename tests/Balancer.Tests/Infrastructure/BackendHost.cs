using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using SampleBackend;

namespace Balancer.Tests.Infrastructure;

/// <summary>A real SampleBackend on a loopback port chosen by the OS.</summary>
internal sealed class BackendHost : IAsyncDisposable
{
    private readonly Action<WebApplicationBuilder>? _configure;
    private readonly bool _admin;
    private readonly string _host;
    private WebApplication? _app;

    private BackendHost(string name, Action<WebApplicationBuilder>? configure, bool admin, string host)
    {
        Name = name;
        _configure = configure;
        _admin = admin;
        _host = host;
    }

    public string Name { get; }

    public Uri Address { get; private set; } = null!;

    /// <summary>The <c>--admin-urls</c> listener, when started with one.</summary>
    public Uri? AdminAddress { get; private set; }

    /// <summary>The HTTP/2 cleartext gRPC address, when started with gRPC.</summary>
    public Uri? GrpcAddress { get; private set; }

    public BackendState State => _app!.Services.GetRequiredService<BackendState>();

    /// <param name="configure">Extra set-up of the backend's host, e.g. a startup filter that watches requests.</param>
    /// <param name="admin">Also serve <c>/admin</c> on a listener of its own (<c>--admin-urls</c>).</param>
    /// <param name="grpc">Also serve gRPC on a port of its own (<c>--grpc-urls</c>).</param>
    /// <param name="address">The loopback address to listen on (any of 127.0.0.0/8).</param>
    public static async Task<BackendHost> StartAsync(string name, int port = 0, Action<WebApplicationBuilder>? configure = null, bool admin = false, bool grpc = false, string address = "127.0.0.1")
    {
        var host = new BackendHost(name, configure, admin, address);
        await host.StartOnAsync(port, grpc ? 0 : null);
        return host;
    }

    /// <summary>Starts again on the same port(s) after <see cref="StopAsync"/>, like a restarted server.</summary>
    public Task RestartAsync() => StartOnAsync(Address.Port, GrpcAddress?.Port);

    public async Task StopAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
            _app = null;
        }
    }

    /// <summary>
    /// Stops at once, like a crashed process: connections (and requests in flight) are cut, nothing drains.
    /// </summary>
    public async Task KillAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync(new CancellationToken(canceled: true));
            await _app.DisposeAsync();
            _app = null;
        }
    }

    public ValueTask DisposeAsync() => new(StopAsync());

    private async Task StartOnAsync(int port, int? grpcPort)
    {
        string[] args = ["--urls", $"http://{_host}:{port}", "--name", Name];
        if (_admin)
        {
            args = [.. args, "--admin-urls", "http://127.0.0.1:0"];
        }

        if (grpcPort is int grpc)
        {
            args = [.. args, "--grpc-urls", $"http://127.0.0.1:{grpc}"];
        }

        var app = BackendApp.Create(args, b =>
        {
            b.Logging.ClearProviders();
            _configure?.Invoke(b);
        });
        await app.StartAsync();
        _app = app;
        var listeners = app.Services.GetService<BackendListeners>();
        if (listeners is null)
        {
            Address = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single() + "/");
            AdminAddress = null;
            GrpcAddress = null;
        }
        else
        {
            Address = listeners.HttpAddresses.Single();
            AdminAddress = listeners.AdminAddresses.SingleOrDefault();
            GrpcAddress = listeners.GrpcAddresses.SingleOrDefault();
        }
    }
}
