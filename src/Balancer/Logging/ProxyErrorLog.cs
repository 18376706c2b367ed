using Balancer.LoadBalancing;
using Yarp.ReverseProxy.Forwarder;

namespace Balancer.Logging;

/// <summary>
/// One short line per failed forward, without a stack trace, in place of YARP's own warning (which carries
/// the whole trace, several kilobytes, for every malformed request a client cares to send). Client faults
/// (a broken body, a client that went away) are Information; the destination's are Warning. Each kind of
/// error is rate-limited, and the count of lines held back rides on the next one written.
/// </summary>
/// <remarks>
/// Called by the retry middleware once it has the request's last answer (<see cref="Resilience.RetryMiddleware"/>),
/// in the async step it takes anyway, rather than by a middleware of its own awaiting every proxied request.
/// </remarks>
internal sealed partial class ProxyErrorLog
{
    /// <summary>Lines per kind of error per <see cref="Window"/>; enough to see what happens, too few to fill a disk.</summary>
    public const int LinesPerWindow = 10;

    public static readonly TimeSpan Window = TimeSpan.FromMinutes(1);

    // Paths and exception messages come from clients: cut to a length that keeps a line short.
    private const int MaxFieldLength = 160;

    private readonly ClientIpResolver _clients;
    private readonly ILogger<ProxyErrorLog> _logger;
    private readonly LogRateLimiter<ForwarderError> _limiter;

    public ProxyErrorLog(ClientIpResolver clients, TimeProvider time, ILogger<ProxyErrorLog> logger)
    {
        _clients = clients;
        _logger = logger;
        _limiter = new LogRateLimiter<ForwarderError>(time, LinesPerWindow, Window);
    }

    /// <summary>Errors caused by the client's side of the exchange, not by the destination.</summary>
    public static bool IsClientFault(ForwarderError error) => error is ForwarderError.RequestCanceled
        or ForwarderError.RequestBodyCanceled or ForwarderError.RequestBodyClient
        or ForwarderError.ResponseBodyCanceled or ForwarderError.ResponseBodyClient
        or ForwarderError.UpgradeRequestCanceled or ForwarderError.UpgradeRequestClient
        or ForwarderError.UpgradeResponseCanceled or ForwarderError.UpgradeResponseClient
        or ForwarderError.RequestCreation;

    /// <summary>Writes the line for <paramref name="context"/>'s failed forward, if it failed and the budget allows.</summary>
    public void Record(HttpContext context)
    {
        if (context.GetForwarderErrorFeature() is not { Error: not ForwarderError.None } failure)
        {
            return;
        }

        var clientFault = IsClientFault(failure.Error);
        var level = clientFault ? LogLevel.Information : LogLevel.Warning;
        if (!_logger.IsEnabled(level) || !_limiter.TryAcquire(failure.Error, out var suppressed))
        {
            return;
        }

        var destination = context.Features.Get<Yarp.ReverseProxy.Model.IReverseProxyFeature>()?.ProxiedDestination?.DestinationId ?? "-";
        var reason = Cut(Innermost(failure.Exception)?.Message ?? "no detail");
        var client = _clients.Resolve(context)?.ToString() ?? "-";
        var path = Cut(context.Request.Path.Value ?? "/");
        if (clientFault)
        {
            LogClientFault(context.Request.Method, path, client, destination, failure.Error, reason, suppressed);
        }
        else
        {
            LogDestinationFault(context.Request.Method, path, client, destination, failure.Error, reason, suppressed);
        }
    }

    // The outermost exceptions are wrappers ("Error while copying content to a stream"); the cause is inside.
    private static Exception? Innermost(Exception? exception)
    {
        while (exception is { InnerException: { } inner })
        {
            exception = exception is AggregateException { InnerExceptions.Count: > 0 } aggregate ? aggregate.InnerExceptions[0] : inner;
        }

        return exception;
    }

    private static string Cut(string text)
    {
        text = text.ReplaceLineEndings(" ");
        return text.Length <= MaxFieldLength ? text : string.Concat(text.AsSpan(0, MaxFieldLength), "...");
    }

    [LoggerMessage(EventId = 1301, Level = LogLevel.Information, Message = "{Method} {Path} from {Client} to {Destination}: client fault {Error}: {Reason} ({Suppressed} similar lines suppressed before this one)")]
    private partial void LogClientFault(string method, string path, string client, string destination, ForwarderError error, string reason, long suppressed);

    [LoggerMessage(EventId = 1302, Level = LogLevel.Warning, Message = "{Method} {Path} from {Client} to {Destination}: {Error}: {Reason} ({Suppressed} similar lines suppressed before this one)")]
    private partial void LogDestinationFault(string method, string path, string client, string destination, ForwarderError error, string reason, long suppressed);
}
