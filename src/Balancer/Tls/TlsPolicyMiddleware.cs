using Balancer.Configuration;
using Balancer.Hosting;
using Microsoft.Extensions.Options;

namespace Balancer.Tls;

/// <summary>
/// The optional redirect of cleartext HTTP/1.x requests to HTTPS (<c>308</c>, so the method and body are kept)
/// and the optional <c>Strict-Transport-Security</c> header on HTTPS responses. Both follow config reloads.
/// </summary>
internal sealed class TlsPolicyMiddleware(RequestDelegate next, IOptionsMonitor<BalancerOptions> options, Listeners listeners)
{
    public Task InvokeAsync(HttpContext context)
    {
        var tls = options.CurrentValue.Tls;
        var request = context.Request;
        if (request.IsHttps)
        {
            if (tls.Hsts.Enabled)
            {
                // Set when the headers go out, so it replaces whatever the backend sent.
                var value = tls.Hsts.HeaderValue();
                context.Response.OnStarting(static state =>
                {
                    var (response, header) = ((HttpResponse, string))state;
                    response.Headers.StrictTransportSecurity = header;
                    return Task.CompletedTask;
                }, (context.Response, value));
            }
        }
        else if (tls.RedirectHttp && !HttpProtocol.IsHttp2(request.Protocol) && !HttpProtocol.IsHttp3(request.Protocol))
        {
            return Redirect(context, tls.RedirectPort ?? listeners.ProxyAddressOf(Uri.UriSchemeHttps)?.Port);
        }

        return next(context);
    }

    private static Task Redirect(HttpContext context, int? port)
    {
        var request = context.Request;
        var host = request.Host.Host;
        if (string.IsNullOrEmpty(host) || port is null)
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            return context.Response.WriteAsync("a Host header is needed to redirect to https\n");
        }

        var authority = port == 443 ? new HostString(host) : new HostString(host, port.Value);
        context.Response.StatusCode = StatusCodes.Status308PermanentRedirect;
        context.Response.Headers.Location = Microsoft.AspNetCore.Http.Extensions.UriHelper.BuildAbsolute("https", authority, request.PathBase, request.Path, request.QueryString);
        return Task.CompletedTask;
    }
}
