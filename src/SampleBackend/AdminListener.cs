using System.Net;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace SampleBackend;

/// <summary>
/// The fault injection under <c>/admin</c> (delay, unhealthy, fail) lives on a listener of its own, given by
/// <c>--admin-urls</c>: a balancer forwards clients to the workload port, so there they get 404. Without
/// <c>--admin-urls</c> the paths are not served at all.
/// </summary>
internal sealed class AdminListener
{
    private const string UrlsKey = "admin-urls";
    private static readonly object Tag = new();

    private AdminListener()
    {
    }

    public static AdminListener Configure(WebApplicationBuilder builder)
    {
        var adminUrls = builder.Configuration[UrlsKey];
        if (string.IsNullOrWhiteSpace(adminUrls))
        {
            return new AdminListener();
        }

        // Explicit endpoints for both, so each connection can be tagged by the listener that accepted it.
        var urls = builder.Configuration["urls"] ?? "http://localhost:5000";
        builder.WebHost.UseSetting("urls", string.Empty);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            foreach (var url in Split(urls))
            {
                Listen(kestrel, url, admin: false);
            }

            foreach (var url in Split(adminUrls))
            {
                Listen(kestrel, url, admin: true);
            }
        });
        return new AdminListener();
    }

    /// <summary>404 for <c>/admin</c> anywhere but on the admin listener.</summary>
    public Task Guard(HttpContext context, RequestDelegate next)
    {
        if (context.Request.Path.StartsWithSegments("/admin")
            && context.Features.Get<IConnectionItemsFeature>()?.Items.ContainsKey(Tag) != true)
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return Task.CompletedTask;
        }

        return next(context);
    }

    private static string[] Split(string urls) => urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static void Listen(KestrelServerOptions kestrel, string url, bool admin)
    {
        var uri = new Uri(url.Replace("://*", "://0.0.0.0", StringComparison.Ordinal).Replace("://+", "://0.0.0.0", StringComparison.Ordinal));
        void Configure(ListenOptions listen)
        {
            if (admin)
            {
                listen.Use(next => connection =>
                {
                    connection.Items[Tag] = Tag;
                    return next(connection);
                });
            }
        }

        if (uri.IsLoopback && uri.Host == "localhost" && uri.Port != 0)
        {
            kestrel.ListenLocalhost(uri.Port, Configure);
        }
        else if (IPAddress.TryParse(uri.Host.Trim('[', ']'), out var address))
        {
            kestrel.Listen(address, uri.Port, Configure);
        }
        else
        {
            kestrel.ListenAnyIP(uri.Port, Configure);
        }
    }
}
