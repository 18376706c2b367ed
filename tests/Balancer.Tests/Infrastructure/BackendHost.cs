using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using SampleBackend;

namespace Balancer.Tests.Infrastructure;

/// <summary>A real SampleBackend on a loopback port chosen by the OS.</summary>
internal sealed class BackendHost : IAsyncDisposable
{
    private readonly Action<WebApplicationBuilder>? _configure;
    private WebApplication? _app;

    private BackendHost(string name, Action<WebApplicationBuilder>? configure)
    {
        Name = name;
        _configure = configure;
    }

    public string Name { get; }

    public Uri Address { get; private set; } = null!;

    public BackendState State => _app!.Services.GetRequiredService<BackendState>();

    /// <param name="configure">Extra set-up of the backend's host, e.g. a startup filter that watches requests.</param>
    public static async Task<BackendHost> StartAsync(string name, int port = 0, Action<WebApplicationBuilder>? configure = null)
    {
        var host = new BackendHost(name, configure);
        await host.StartOnAsync(port);
        return host;
    }

    /// <summary>Starts again on the same port after <see cref="StopAsync"/>, like a restarted server.</summary>
    public Task RestartAsync() => StartOnAsync(Address.Port);

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

    private async Task StartOnAsync(int port)
    {
        var app = BackendApp.Create(["--urls", $"http://127.0.0.1:{port}", "--name", Name], b =>
        {
            b.Logging.ClearProviders();
            _configure?.Invoke(b);
        });
        await app.StartAsync();
        _app = app;
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        Address = new Uri(address + "/");
    }
}
