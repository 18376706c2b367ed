using Microsoft.AspNetCore.Http.Features;

namespace Balancer.Grpc;

/// <summary>
/// The little of the gRPC-over-HTTP/2 wire protocol a balancer needs: telling a gRPC call from other
/// traffic, reading the status a call ended with, and answering a call itself with a status.
/// </summary>
internal static class GrpcProtocol
{
    public const string ContentType = "application/grpc";
    public const string StatusHeader = "grpc-status";
    public const string MessageHeader = "grpc-message";

    public const int Ok = 0;
    public const int Cancelled = 1;
    public const int Unknown = 2;
    public const int Internal = 13;
    public const int Unavailable = 14;

    /// <summary>The canonical names of the status codes 0-16, as the gRPC specification spells them.</summary>
    private static readonly string[] Names =
    [
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
        "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
        "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
    ];

    public static int StatusCount => Names.Length;

    /// <summary>
    /// True for <c>application/grpc</c> and <c>application/grpc+proto</c> and the like; not for gRPC-Web
    /// (<c>application/grpc-web</c>), which carries its status in the body and works over HTTP/1.1.
    /// </summary>
    public static bool IsGrpc(string? contentType) =>
        contentType is not null
        && contentType.StartsWith(ContentType, StringComparison.OrdinalIgnoreCase)
        && (contentType.Length == ContentType.Length || contentType[ContentType.Length] is '+' or ';');

    public static bool IsGrpc(HttpRequest request) => IsGrpc(request.ContentType);

    /// <summary>The name of a status code; codes outside 0-16 are UNKNOWN, as clients treat them.</summary>
    public static string Name(int status) => (uint)status < (uint)Names.Length ? Names[status] : Names[Unknown];

    /// <summary>A <c>grpc-status</c> value, or null when it is missing or not a number.</summary>
    public static int? ParseStatus(string? value) =>
        int.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var status) ? status : null;

    /// <summary>
    /// The status a gRPC client derives from an HTTP response that carries no <c>grpc-status</c>, by the
    /// mapping of the gRPC specification (http-grpc-status-mapping).
    /// </summary>
    public static int FromHttpStatus(int httpStatus) => httpStatus switch
    {
        400 => Internal,
        401 => 16,
        403 => 7,
        404 => 12,
        429 or 502 or 503 or 504 => Unavailable,
        _ => Unknown,
    };

    /// <summary>
    /// The status the client of <paramref name="context"/> was sent: from the response headers (a
    /// trailers-only answer) or trailers, else derived from the HTTP status. Call after the response ended.
    /// </summary>
    public static int SentStatus(HttpContext context)
    {
        var response = context.Response;
        if (ParseStatus(response.Headers[StatusHeader]) is int inHeaders)
        {
            return inHeaders;
        }

        if (context.Features.Get<IHttpResponseTrailersFeature>()?.Trailers is { } trailers && ParseStatus(trailers[StatusHeader]) is int inTrailers)
        {
            return inTrailers;
        }

        if (response.StatusCode != StatusCodes.Status200OK)
        {
            return FromHttpStatus(response.StatusCode);
        }

        // A 200 without a status: the stream was cut (the client then sees a reset), or the client left.
        return context.RequestAborted.IsCancellationRequested ? Cancelled : Internal;
    }

    /// <summary>
    /// Ends a call with <paramref name="status"/> as a trailers-only response (HTTP 200, the status in the
    /// headers, no body), the form gRPC servers use for a call that fails before any message.
    /// </summary>
    public static Task WriteStatusAsync(HttpContext context, int status, string message)
    {
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = ContentType;
        response.ContentLength = null;
        response.Headers[StatusHeader] = status.ToString(System.Globalization.CultureInfo.InvariantCulture);
        // grpc-message is percent-encoded; the balancer's own messages are plain ASCII without '%'.
        response.Headers[MessageHeader] = Uri.EscapeDataString(message);
        return response.CompleteAsync();
    }
}
