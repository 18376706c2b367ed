namespace Balancer.Hosting;

/// <summary>The balancer's own short answers (413, 401, 503): plain text saying why, with its length.</summary>
internal static class PlainTextAnswer
{
    public static Task WriteAsync(HttpContext context, int statusCode, byte[] body)
    {
        var response = context.Response;
        response.StatusCode = statusCode;
        response.ContentType = "text/plain; charset=utf-8";
        response.ContentLength = body.Length;
        return HttpMethods.IsHead(context.Request.Method) ? Task.CompletedTask : response.Body.WriteAsync(body, context.RequestAborted).AsTask();
    }
}
