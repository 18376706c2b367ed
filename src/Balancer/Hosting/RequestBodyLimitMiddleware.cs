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

    private async Task RejectAsync(HttpContext context)
    {
        // The body is not forwarded: the connection cannot carry another request after it.
        context.Response.Headers.Connection = "close";
        await PlainTextAnswer.WriteAsync(context, StatusCodes.Status413PayloadTooLarge, _body);
        await context.Response.CompleteAsync();
        await LingerAsync(context);
    }

    /// <summary>
    /// Reads and discards what the client is still sending, for a moment, before the connection closes (as
    /// NGINX's lingering close does): closing a socket with unread data resets it, and a client still writing
    /// its body would then lose the 413 it has not read yet.
    /// </summary>
    private static async Task LingerAsync(HttpContext context)
    {
        if (context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
        {
            size.MaxRequestBodySize = null;
        }

        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            using var linger = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
            linger.CancelAfter(LingerTime);
            long drained = 0;
            int read;
            while (drained < MaxLingerBytes && (read = await context.Request.Body.ReadAsync(buffer, linger.Token)) > 0)
            {
                drained += read;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or BadHttpRequestException)
        {
            // The client stopped sending, went away or sent too much: the connection closes either way.
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static readonly TimeSpan LingerTime = TimeSpan.FromSeconds(2);
    private const long MaxLingerBytes = 8L * 1024 * 1024;
}
