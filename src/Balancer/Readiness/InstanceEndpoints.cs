using System.Text.Json;
using System.Text.Json.Serialization;

namespace Balancer.Readiness;

/// <summary>
/// <c>GET /readyz</c> and the operator's switch for it, on the management listener:
/// <c>POST /api/instance/drain</c> takes the instance out of rotation without stopping it (maintenance),
/// <c>POST /api/instance/enable</c> puts it back.
/// </summary>
internal static partial class InstanceEndpoints
{
    public const string ReadyPath = "/readyz";

    /// <summary>200 <c>ready</c> or 503 with the reason, as plain text for probes and people alike.</summary>
    public static Task WriteReadinessAsync(HttpContext context)
    {
        var reason = context.RequestServices.GetRequiredService<InstanceReadiness>().NotReadyReason();
        context.Response.Headers.CacheControl = "no-store";
        return reason is null
            ? Hosting.PlainTextAnswer.WriteAsync(context, StatusCodes.Status200OK, "ready\n"u8.ToArray())
            : Hosting.PlainTextAnswer.WriteAsync(context, StatusCodes.Status503ServiceUnavailable, System.Text.Encoding.UTF8.GetBytes($"not ready: {reason}\n"));
    }

    /// <summary>The <c>/api/instance</c> paths, answered before the read-only management paths.</summary>
    public static Task HandleAsync(HttpContext context, RequestDelegate next)
    {
        Action<InstanceReadiness>? change;
        switch (context.Request.Path.Value)
        {
            case "/api/instance":
                change = null;
                break;
            case "/api/instance/drain":
                change = static readiness => readiness.Drain();
                break;
            case "/api/instance/enable":
                change = static readiness => readiness.Enable();
                break;
            default:
                return next(context);
        }

        var method = context.Request.Method;
        if (change is null ? !HttpMethods.IsGet(method) && !HttpMethods.IsHead(method) : !HttpMethods.IsPost(method))
        {
            context.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            context.Response.Headers.Allow = change is null ? "GET, HEAD" : "POST";
            return Task.CompletedTask;
        }

        var readiness = context.RequestServices.GetRequiredService<InstanceReadiness>();
        change?.Invoke(readiness);
        var reason = readiness.NotReadyReason();
        context.Response.Headers.CacheControl = "no-store";
        return context.Response.WriteAsJsonAsync(new InstanceState(readiness.Drained ? "drained" : "enabled", reason is null, reason), InstanceJson.Default.InstanceState);
    }

    /// <summary>The answer of <c>/api/instance</c>: the operator's switch, and the readiness it results in.</summary>
    private sealed record InstanceState(string State, bool Ready, string? Reason);

    [JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
    [JsonSerializable(typeof(InstanceState))]
    private sealed partial class InstanceJson : JsonSerializerContext;
}
