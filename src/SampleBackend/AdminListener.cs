using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace SampleBackend;

/// <summary>
/// The fault injection under <c>/admin</c> (delay, unhealthy, fail) lives on a listener of its own, given by
/// <c>--admin-urls</c> and bound by <see cref="BackendListeners"/>: a balancer forwards clients to the
/// workload port, so there they get 404. Without <c>--admin-urls</c> the paths are not served at all.
/// </summary>
internal static class AdminListener
{
    private static readonly object Tag = new();

    /// <summary>Tags each connection the listener accepts, so requests can tell which listener they came in on.</summary>
    public static void Mark(ListenOptions listen) =>
        listen.Use(next => connection =>
        {
            connection.Items[Tag] = Tag;
            return next(connection);
        });

    /// <summary>404 for <c>/admin</c> anywhere but on the admin listener.</summary>
    public static Task Guard(HttpContext context, RequestDelegate next)
    {
        if (context.Request.Path.StartsWithSegments("/admin")
            && context.Features.Get<IConnectionItemsFeature>()?.Items.ContainsKey(Tag) != true)
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return Task.CompletedTask;
        }

        return next(context);
    }
}
