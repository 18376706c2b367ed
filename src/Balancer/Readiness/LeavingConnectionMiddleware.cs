namespace Balancer.Readiness;

/// <summary>
/// While the instance is leaving or drained, HTTP/1.x answers carry <c>Connection: close</c>. A client's next
/// request then opens a new connection, which reaches whichever balancer holds the address by then; a kept-alive
/// connection would follow the old one until it is gone, or be reset by the new holder once the address moved.
/// HTTP/2 clients are told by the GOAWAY of the drain itself.
/// </summary>
internal sealed class LeavingConnectionMiddleware(RequestDelegate next, InstanceReadiness readiness)
{
    public Task InvokeAsync(HttpContext context)
    {
        if (readiness.SendingAway && (HttpProtocol.IsHttp11(context.Request.Protocol) || HttpProtocol.IsHttp10(context.Request.Protocol)))
        {
            context.Response.OnStarting(static state =>
            {
                ((HttpResponse)state).Headers.Connection = "close";
                return Task.CompletedTask;
            }, context.Response);
        }

        return next(context);
    }
}
