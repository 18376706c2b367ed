using System.Text;
using Balancer.Configuration;
using Microsoft.Extensions.Options;

namespace Balancer.Hosting;

/// <summary>
/// Answers <c>413</c> at once when a request's <c>Content-Length</c> is over
/// <see cref="LimitsOptions.MaxRequestBodySize"/>, before anything is sent to a backend.
/// </summary>
/// <remarks>
/// Kestrel enforces the same limit only when the body is first read, and YARP reads it while forwarding:
/// by then the request line and headers have reached the backend, which would see a request cut short.
/// A chunked body has no length to check; Kestrel cuts it with <c>413</c> when it passes the limit.
/// </remarks>
internal sealed class RequestBodyLimitMiddleware
{
    private readonly RequestDelegate _next;
    private readonly long _limit;
    private readonly byte[] _body;

    public RequestBodyLimitMiddleware(RequestDelegate next, IOptions<BalancerOptions> options)
    {
        _next = next;
        _limit = options.Value.Limits.MaxRequestBodySize;
        _body = Encoding.UTF8.GetBytes($"413 Content Too Large: the request body may be at most {_limit} bytes.\n");
    }

    public Task InvokeAsync(HttpContext context)
    {
        if (context.Request.ContentLength > _limit)
        {
            return RejectAsync(context);
        }

        return _next(context);
    }

    private Task RejectAsync(HttpContext context)
    {
        // The body is not read: the connection cannot carry another request after it.
        context.Response.Headers.Connection = "close";
        return PlainTextAnswer.WriteAsync(context, StatusCodes.Status413PayloadTooLarge, _body);
    }
}
