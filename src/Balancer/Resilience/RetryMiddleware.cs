using Balancer.Configuration;
using Balancer.Health;
using Balancer.Telemetry;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;

namespace Balancer.Resilience;

/// <summary>
/// Failover: when forwarding failed at transport level and no response byte reached the client, sends the
/// request again to another available destination (YARP has no retries). Sits before load balancing in the
/// proxy pipeline, so each attempt is a fresh pick among the destinations not tried yet, and passive health
/// sees every failed attempt.
/// </summary>
/// <remarks>
/// Safe and idempotent methods are retried on refused connections, connect failures, resets and timeouts,
/// and when their destination is marked Down while they wait for its answer (<see cref="DownSignals"/>);
/// other methods only when nothing was sent (connection refused, circuit open), since the backend may have
/// acted on a request that broke mid-way. gRPC calls count as idempotent unless
/// <see cref="RetryOptions.GrpcIdempotent"/> is off. The success path costs a feature lookup, a feature mark
/// and, for requests with a body, a buffering stream only if the body is small enough to be replayed.
/// </remarks>
internal sealed partial class RetryMiddleware
{
    private static readonly byte[] LocalShortageBody = "503 Service Unavailable: the balancer has too many connections open; try again.\n"u8.ToArray();

    private readonly RequestDelegate _next;
    private readonly ILogger<RetryMiddleware> _logger;
    private readonly Logging.ProxyErrorLog _errors;
    private readonly DestinationEventCounts _retries;
    private RetryOptions _options;

    public RetryMiddleware(RequestDelegate next, IOptionsMonitor<BalancerOptions> options, BalancerMetricsRegistry metrics, Logging.ProxyErrorLog errors, ILogger<RetryMiddleware> logger)
    {
        _next = next;
        _logger = logger;
        _errors = errors;
        _options = options.CurrentValue.Retry;
        // Read once per change, not per request: CurrentValue is a dictionary lookup.
        options.OnChange(o => _options = o.Retry);
        _retries = metrics.Events;
    }

    public Task InvokeAsync(HttpContext context)
    {
        var options = _options;
        if (options.MaxAttempts <= 0)
        {
            return ForwardOnceAsync(context);
        }

        var request = context.Request;
        var body = Body.None;
        ReplayableBody? kept = null;
        if (context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody != false)
        {
            // Only a body of known, small length is buffered; anything else streams as before and is not retried.
            if (request.ContentLength is long length && length <= options.MaxBufferedBodyBytes)
            {
                if (length > 0)
                {
                    request.EnableBuffering((int)length, length);
                }
            }
            else if (request.ContentLength is null && options.GrpcIdempotent && Grpc.GrpcProtocol.IsGrpc(request))
            {
                kept = new ReplayableBody(request.Body, options.MaxBufferedBodyBytes);
                request.Body = kept.First();
                body = Body.Kept;
            }
            else
            {
                body = Body.Streamed;
            }
        }

        return ForwardAsync(context, options.MaxAttempts, body, kept);
    }

    private async Task ForwardAsync(HttpContext context, int maxAttempts, Body body, ReplayableBody? kept)
    {
        var feature = context.GetReverseProxyFeature();
        var candidates = feature.AvailableDestinations;
        // A gRPC body kept as it streams may outgrow the buffer mid-call: such calls are not withdrawn.
        var replaySafe = body == Body.None && IsIdempotent(context.Request.Method);
        for (var attempt = 0; ; attempt++)
        {
            // Withdrawn from a destination marked Down only when there is somewhere else to send it.
            ReplaySafe.Mark(context.Features, replaySafe && attempt < maxAttempts && candidates.Count > 1);
            await _next(context);
            var error = context.GetForwarderErrorFeature();
            if (error is null)
            {
                break;
            }

            var kind = TransportFailure.Classify(error.Error, error.Exception);
            var failed = feature.ProxiedDestination;
            if (kind == FailureKind.None || failed is null || context.Response.HasStarted || context.RequestAborted.IsCancellationRequested)
            {
                break;
            }

            if (kind == FailureKind.Local)
            {
                // The balancer itself is out of sockets: another destination would fail the same way.
                context.Response.Clear();
                context.Features.Set<IForwarderErrorFeature>(null);
                context.Response.Headers.RetryAfter = "1";
                await Hosting.PlainTextAnswer.WriteAsync(context, StatusCodes.Status503ServiceUnavailable, LocalShortageBody);
                break;
            }

            var replayable = body switch
            {
                Body.None => true,
                Body.Kept => kept!.CanReplay,
                _ => false,
            };
            var mayRetry = (replayable || TransportFailure.NothingSent(kind)) && (body == Body.Kept || MayRetry(context.Request.Method, kind));
            var remaining = mayRetry ? Without(candidates, failed) : [];
            if (remaining.Length == 0 && mayRetry && TransportFailure.NothingSent(kind))
            {
                // Every destination was tried and the last would not even take a connection: the cluster is
                // down, and the client gets the same answer as when health checks already know it.
                context.Response.Clear();
                context.Features.Set<IForwarderErrorFeature>(null);
                await NoAvailableDestinationMiddleware.WriteAsync(context);
                break;
            }

            if (remaining.Length == 0 || attempt >= maxAttempts)
            {
                // A Polly attempt timeout reaches YARP as an ordinary exception (502); the client should see
                // the same 504 as for YARP's own ActivityTimeout.
                if (kind == FailureKind.Timeout)
                {
                    context.Response.StatusCode = StatusCodes.Status504GatewayTimeout;
                }

                break;
            }

            var cluster = feature.Cluster.Config.ClusterId;
            var reason = TransportFailure.Label(kind);
            _retries.Retry(cluster, failed.DestinationId, reason);
            LogRetry(context.Request.Method, cluster, failed.DestinationId, reason, attempt + 1);
            RetryCount.Increment(context);

            context.Response.Clear();
            context.Features.Set<IForwarderErrorFeature>(null);
            if (kept is not null && kept.CanReplay)
            {
                context.Request.Body = kept.Next();
            }
            else if (context.Request.Body.CanSeek)
            {
                context.Request.Body.Position = 0;
            }

            candidates = remaining;
            feature.AvailableDestinations = remaining;
        }

        // The request's last answer is known: the one line a failed forward gets, if any.
        _errors.Record(context);
    }

    private async Task ForwardOnceAsync(HttpContext context)
    {
        await _next(context);
        _errors.Record(context);
    }

    private static bool MayRetry(string method, FailureKind kind) => TransportFailure.NothingSent(kind) || IsIdempotent(method);

    private static bool IsIdempotent(string method) =>
        HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || HttpMethods.IsOptions(method)
        || HttpMethods.IsPut(method) || HttpMethods.IsDelete(method) || HttpMethods.IsTrace(method);

    private static DestinationState[] Without(IReadOnlyList<DestinationState> candidates, DestinationState failed)
    {
        var count = 0;
        for (var i = 0; i < candidates.Count; i++)
        {
            if (candidates[i] != failed)
            {
                count++;
            }
        }

        var result = new DestinationState[count];
        var next = 0;
        for (var i = 0; i < candidates.Count; i++)
        {
            if (candidates[i] != failed)
            {
                result[next++] = candidates[i];
            }
        }

        return result;
    }

    /// <summary>How the request body can be sent again.</summary>
    private enum Body
    {
        /// <summary>No body, or one buffered whole before forwarding.</summary>
        None,

        /// <summary>A gRPC body kept as it streams (<see cref="ReplayableBody"/>), replayable while it fits.</summary>
        Kept,

        /// <summary>Streamed and not kept: replayable only if nothing of it was read.</summary>
        Streamed,
    }

    [LoggerMessage(EventId = 3101, Level = LogLevel.Information, Message = "{Method} to {Cluster}/{Destination} failed ({Reason}); retrying on another destination (retry {Retry})")]
    private partial void LogRetry(string method, string cluster, string destination, string reason, int retry);
}
