namespace Balancer.Hosting;

/// <summary>
/// Answers <c>CONNECT</c> with <c>501 Not Implemented</c>: the balancer is a reverse proxy, not a tunnel.
/// YARP refuses the method by throwing while it builds the outgoing request, which would be a 502 and a
/// logged stack trace for every such request. The extended CONNECT of RFC 8441 (a WebSocket over HTTP/2)
/// is not a tunnel and passes: YARP forwards it as a WebSocket.
/// </summary>
internal sealed class ConnectMethodMiddleware(RequestDelegate next)
{
    private static readonly byte[] Body = "501 Not Implemented: CONNECT is not supported; this is a reverse proxy, not a tunnel.\n"u8.ToArray();

    public Task InvokeAsync(HttpContext context)
    {
        if (!HttpMethods.IsConnect(context.Request.Method)
            || context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpExtendedConnectFeature>() is { IsExtendedConnect: true })
        {
            return next(context);
        }

        // Whatever the client meant to send through the tunnel must not be read as the next request.
        context.Response.Headers.Connection = "close";
        return PlainTextAnswer.WriteAsync(context, StatusCodes.Status501NotImplemented, Body);
    }
}
