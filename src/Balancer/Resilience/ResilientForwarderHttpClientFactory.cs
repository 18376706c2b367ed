using System.Net;
using System.Net.Sockets;
using Balancer.Configuration;
using Balancer.Health;
using Balancer.Telemetry;
using Microsoft.Extensions.Options;
using Polly;
using Polly.CircuitBreaker;
using Polly.Timeout;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Resilience;

/// <summary>
/// YARP's outbound client per cluster, with a Polly resilience pipeline (<see cref="BreakerHandler"/>) around
/// its handler: a circuit breaker per destination (keyed by the request's scheme and authority) and an
/// attempt timeout.
/// </summary>
/// <remarks>
/// Why this and not the usual <c>AddStandardResilienceHandler</c>: retries inside the handler could only send
/// to the same address, while the useful retry for a balancer goes to another destination, which only the
/// proxy pipeline can pick (<see cref="RetryMiddleware"/>). What the handler adds is what passive health
/// lacks: YARP's passive checks see transport errors only, the breaker also counts 502/503/504 answers and
/// timeouts, so a backend that is up but failing most requests is taken out (its circuit opening marks it
/// down through the health tracker for the break duration). An open circuit fails fast without a connection,
/// which the retry middleware treats as "nothing sent". Active probes bypass the breaker, so recovery is
/// decided by the probe alone. The handler only wraps the send up to the response headers; bodies stream
/// through untouched.
/// </remarks>
internal sealed class ResilientForwarderHttpClientFactory(
    IOptionsMonitor<BalancerOptions> options,
    DestinationHealthTracker tracker,
    IServiceProvider services,
    ILogger<ForwarderHttpClientFactory> logger) : ForwarderHttpClientFactory(logger), IForwarderHttpClientFactory
{
    // What WrapHandler built, handed to CreateClient within the same call.
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<ForwarderHttpClientContext, Built> _built = new();

    protected override void ConfigureHandler(ForwarderHttpClientContext context, SocketsHttpHandler handler)
    {
        base.ConfigureHandler(context, handler);
        services.GetService<Tls.BackendTrust>()?.Apply(context, handler);
        handler.ConnectTimeout = ConnectTimeout.Of(context.NewMetadata);
        var localErrors = services.GetRequiredService<Hosting.LocalSocketErrors>();
        var sockets = services.GetRequiredService<Hosting.BackendSockets>();
        handler.ConnectCallback = (connection, cancellationToken) => ConnectAsync(connection, sockets, localErrors, cancellationToken);
        if (services.GetService<Telemetry.ProxyTracing>() is { Detailed: true })
        {
            // OpenTelemetry's HttpClient instrumentation makes its span and writes the headers through it.
            return;
        }

        // Without a propagator the SocketsHttpHandler leaves out its DiagnosticsHandler: no activity of its own
        // under whatever is current, no header rewriting, one handler less per request. The balancer writes the
        // trace context itself when it traces (Telemetry.TraceContextTransformProvider); otherwise the client's
        // traceparent passes as sent.
        handler.ActivityHeadersPropagator = null;
    }

    /// <summary>
    /// What SocketsHttpHandler does by default (a dual-mode TCP socket without Nagle), within the backend
    /// sockets' share of descriptors; a socket the balancer could not open is counted as its own error,
    /// apart from the destination's.
    /// </summary>
    private static async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext connection, Hosting.BackendSockets sockets, Hosting.LocalSocketErrors localErrors, CancellationToken cancellationToken)
    {
        Socket socket;
        try
        {
            sockets.Acquire();
            try
            {
                socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            }
            catch
            {
                sockets.Release();
                throw;
            }
        }
        catch (SocketException e) when (Hosting.LocalSocketErrors.IsLocal(e.SocketErrorCode))
        {
            localErrors.Record(ProbeMarks.IsProbe(connection.InitialRequestMessage) ? Hosting.LocalSocketErrors.Probe : Hosting.LocalSocketErrors.Connect, e);
            throw;
        }

        try
        {
            await socket.ConnectAsync(connection.DnsEndPoint, cancellationToken);
            return sockets.Wrap(socket);
        }
        catch
        {
            socket.Dispose();
            sockets.Release();
            throw;
        }
    }

    HttpMessageInvoker IForwarderHttpClientFactory.CreateClient(ForwarderHttpClientContext context)
    {
        var client = CreateClient(context);
        if (ReferenceEquals(client, context.OldClient) || !_built.TryGetValue(context, out var built))
        {
            return client;
        }

        _built.Remove(context);
        // The same handlers in a client that can also send a request withdrawable from its destination; the
        // client the base class made around them is dropped unused (disposing it would dispose them).
        return new WithdrawableClient(built.Outer, built.Sends, services.GetRequiredService<DownSignals>());
    }

    protected override HttpMessageHandler WrapHandler(ForwarderHttpClientContext context, HttpMessageHandler handler)
    {
        // Outermost, whatever the cluster's metadata says now: a client is not rebuilt when only metadata changes.
        var probes = new ProbeRequests.ProbeHandler(services.GetRequiredService<TimeProvider>()) { InnerHandler = handler };
        var sends = WrapResilience(context, probes);
        var outer = new Grpc.GrpcHealthProbe.Handler { InnerHandler = sends };
        _built.AddOrUpdate(context, new Built(outer, sends));
        return outer;
    }

    private BreakerHandler WrapResilience(ForwarderHttpClientContext context, HttpMessageHandler handler)
    {
        var breaker = options.CurrentValue.CircuitBreaker;
        var pipelines = breaker.Enabled ? new DestinationPipelines(context.ClusterId, breaker, tracker, services) : null;
        return new BreakerHandler(pipelines is null ? null : pipelines.For) { InnerHandler = handler };
    }

    /// <summary>The handlers <see cref="WrapHandler"/> made for one client: all of them, and those proxied requests go through.</summary>
    private sealed record Built(HttpMessageHandler Outer, BreakerHandler Sends);

    /// <summary>One pipeline per destination of a cluster, found by address prefix without allocating.</summary>
    private sealed class DestinationPipelines(string clusterId, CircuitBreakerOptions options, DestinationHealthTracker tracker, IServiceProvider services)
    {
        private readonly Lock _gate = new();
        private volatile Entry[] _entries = [];

        public ResiliencePipeline<HttpResponseMessage> For(HttpRequestMessage request)
        {
            if (ProbeMarks.IsProbe(request) || request.RequestUri is not { } uri)
            {
                return ResiliencePipeline<HttpResponseMessage>.Empty;
            }

            var address = uri.OriginalString;
            var entries = _entries;
            for (var i = 0; i < entries.Length; i++)
            {
                if (entries[i].Matches(address))
                {
                    return entries[i].Pipeline;
                }
            }

            return Add(uri);
        }

        private ResiliencePipeline<HttpResponseMessage> Add(Uri uri)
        {
            var prefix = uri.GetLeftPart(UriPartial.Authority);
            lock (_gate)
            {
                foreach (var entry in _entries)
                {
                    if (entry.Prefix == prefix)
                    {
                        return entry.Pipeline;
                    }
                }

                var pipeline = Build(prefix);
                _entries = [.. _entries, new Entry(prefix, pipeline)];
                return pipeline;
            }
        }

        private ResiliencePipeline<HttpResponseMessage> Build(string prefix)
        {
            // Breaker outside the timeout, so that an attempt that timed out counts as a failure.
            var builder = new ResiliencePipelineBuilder<HttpResponseMessage>().AddCircuitBreaker(new CircuitBreakerStrategyOptions<HttpResponseMessage>
            {
                FailureRatio = options.FailureRatio,
                MinimumThroughput = options.MinimumThroughput,
                SamplingDuration = options.SamplingDuration,
                BreakDuration = options.BreakDuration,
                ShouldHandle = static args => ValueTask.FromResult(IsFailure(args.Outcome)),
                OnOpened = args =>
                {
                    MarkDown(prefix, args.BreakDuration);
                    return ValueTask.CompletedTask;
                },
            });

            // Off by default: YARP's ActivityTimeout already bounds the wait for headers, and a second timer
            // per request costs throughput.
            if (options.AttemptTimeout is { } timeout)
            {
                builder.AddTimeout(timeout);
            }

            return builder.Build();
        }

        private static bool IsFailure(Outcome<HttpResponseMessage> outcome) => outcome.Exception switch
        {
            // A client's broken body fails the send too; counting it would let any client open the circuit.
            HttpRequestException e when TransportFailure.IsClientSide(e) => false,
            // The balancer's own shortage of sockets is not the destination's failure either.
            HttpRequestException e => !Hosting.LocalSocketErrors.IsLocal(e),
            TimeoutRejectedException => true,
            null => outcome.Result?.StatusCode is HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout,
            _ => false,
        };

        private void MarkDown(string prefix, TimeSpan period)
        {
            // Resolved late: YARP's proxy state itself depends on this client factory.
            if (!services.GetRequiredService<IProxyStateLookup>().TryGetCluster(clusterId, out var cluster))
            {
                return;
            }

            foreach (var destination in cluster.Destinations.Values)
            {
                if (new Entry(prefix, ResiliencePipeline<HttpResponseMessage>.Empty).Matches(destination.Model.Config.Address))
                {
                    tracker.SetPassive(cluster, destination, DestinationHealth.Unhealthy, period, "circuit breaker opened (too many failed requests)", clearedByProbe: false);
                }
            }
        }

        private readonly record struct Entry(string Prefix, ResiliencePipeline<HttpResponseMessage> Pipeline)
        {
            public bool Matches(string address) =>
                address.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase)
                && (address.Length == Prefix.Length || address[Prefix.Length] is '/' or '?' or '#');
        }
    }
}
