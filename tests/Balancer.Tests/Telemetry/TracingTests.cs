using System.Collections.Concurrent;
using System.Collections.ObjectModel;
using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Balancer.Configuration;
using Balancer.Telemetry;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;
using Bench.Processes;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using OpenTelemetry;
using OpenTelemetry.Trace;

namespace Balancer.Tests.Telemetry;

/// <summary>
/// Traces through a real balancer to real backends, which record the <c>traceparent</c> they receive.
/// An ActivityListener is process-wide, so exported spans are picked by trace id, never by count.
/// </summary>
[Collection(IntegrationCollection.Name)]
public sealed partial class TracingTests
{
    private const string ClientTraceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    private const string ClientSpanId = "00f067aa0ba902b7";
    private const string ClientTraceparent = $"00-{ClientTraceId}-{ClientSpanId}-01";

    [Fact]
    public async Task TracingOn_BackendGetsTraceparent_OfTheBalancersAttemptSpan_InOneTrace()
    {
        var exported = new ExportedSpans();
        var seen = new SeenTraceparents();
        await using var lb = await StartTracedAsync(exported, seen);
        const string scrapeTraceId = "0af7651916cd43dd8448eb211c80319c";

        await OutsideGetAsync(lb.ManagementAddress, "/metrics", $"00-{scrapeTraceId}-b7ad6b7169203331-01");
        var response = await OutsideGetAsync(lb, traceparent: null);

        var (traceId, parentId) = Parse(seen.Single());
        var (server, attempts) = await TraceAsync(exported, traceId);
        Assert.Equal(ActivityKind.Server, server.Kind);
        Assert.Equal(default, server.ParentSpanId);
        Assert.Equal("GET", server.DisplayName);
        Assert.Equal(200, server.GetTagItem("http.response.status_code"));
        Assert.Equal("/", server.GetTagItem("url.path"));
        Assert.Equal("backends", server.GetTagItem("balancer.cluster"));
        Assert.Equal("all", server.GetTagItem("balancer.route"));
        Assert.Equal(BackendOf(response), server.GetTagItem("balancer.destination"));
        Assert.Equal(ActivityStatusCode.Unset, server.Status);
        var attempt = Assert.Single(attempts);
        Assert.Equal(ActivityKind.Client, attempt.Kind);
        Assert.Equal(BackendOf(response), attempt.GetTagItem("balancer.destination"));
        Assert.Equal(lb.Backend(BackendOf(response)).Address.Port, attempt.GetTagItem("server.port"));
        Assert.Equal(200, attempt.GetTagItem("http.response.status_code"));
        // The backend's parent is the balancer's attempt: the trace continues exactly there.
        Assert.Equal(attempt.SpanId.ToHexString(), parentId);
        // Management requests (scrapes, status polls) are not traced.
        Assert.Empty(exported.OfTrace(scrapeTraceId));
    }

    [Fact]
    public async Task TracingOn_ClientSentSampledTraceparent_TheBalancerContinuesTheClientsTrace()
    {
        var exported = new ExportedSpans();
        var seen = new SeenTraceparents();
        await using var lb = await StartTracedAsync(exported, seen);

        await OutsideGetAsync(lb, ClientTraceparent);

        var (traceId, parentId) = Parse(seen.Single());
        Assert.Equal(ClientTraceId, traceId);
        var (server, attempts) = await TraceAsync(exported, traceId);
        Assert.Equal(ClientSpanId, server.ParentSpanId.ToHexString());
        Assert.Equal(Assert.Single(attempts).SpanId.ToHexString(), parentId);
    }

    [Fact]
    public async Task TracingOn_ClientSentUnsampledTraceparent_NothingIsTraced_AndTheHeaderPassesUnchanged()
    {
        var exported = new ExportedSpans();
        var seen = new SeenTraceparents();
        await using var lb = await StartTracedAsync(exported, seen);
        const string unsampled = $"00-{ClientTraceId}-{ClientSpanId}-00";

        await OutsideGetAsync(lb, unsampled);
        // A sampled request after it, whose spans are exported once it ended: by then the first is long over.
        await OutsideGetAsync(lb, traceparent: null);
        var second = Parse(seen.All()[1]).TraceId;
        await TraceAsync(exported, second);

        Assert.Equal(unsampled, seen.All()[0]);
        Assert.Empty(exported.OfTrace(ClientTraceId));
    }

    [Fact]
    public async Task SampleRatioZero_TracesOnlyWhatClientsSampled_AndAReloadToOneTracesEverything()
    {
        var exported = new ExportedSpans();
        var seen = new SeenTraceparents();
        await using var lb = await StartTracedAsync(exported, seen, ratio: 0);

        await OutsideGetAsync(lb, traceparent: null);
        await OutsideGetAsync(lb, ClientTraceparent);
        await TraceAsync(exported, ClientTraceId);
        // Not traced and no client header: the backend gets none.
        Assert.Null(seen.All()[0]);
        Assert.Equal([ClientTraceId], exported.TraceIds());

        lb.WriteConfig("RoundRobin", c => c["Balancer"]!["Tracing"] = new JsonObject { ["SampleRatio"] = 1 });
        await UntilANewRequestIsTracedAsync(lb, seen, exported, "the reloaded ratio to trace a request without traceparent");
    }

    [Fact]
    public async Task TracingOn_RequestFailedOver_HasOneAttemptSpanPerDestinationTried()
    {
        var exported = new ExportedSpans();
        var seen = new SeenTraceparents();
        // Only B and C, B refusing connections and no active probes: the first request B gets fails over.
        await using var lb = await StartTracedAsync(exported, seen, edit: c => ((JsonObject)c["ReverseProxy"]!["Clusters"]!["backends"]!["Destinations"]!).Remove("A"));
        await lb.Backend("B").KillAsync();

        await OutsideGetAsync(lb, traceparent: null);
        await OutsideGetAsync(lb, traceparent: null);

        var traces = seen.All().Select(t => Parse(t).TraceId).ToList();
        var spans = new List<(Activity Server, List<Activity> Attempts)>();
        foreach (var traceId in traces)
        {
            spans.Add(await TraceAsync(exported, traceId));
        }

        var failedOver = Assert.Single(spans, s => s.Attempts.Count == 2);
        Assert.Single(spans, s => s.Attempts.Count == 1 && (string?)s.Attempts[0].GetTagItem("balancer.destination") == "C");
        var (first, second) = (failedOver.Attempts[0], failedOver.Attempts[1]);
        Assert.Equal("B", first.GetTagItem("balancer.destination"));
        Assert.Equal(ActivityStatusCode.Error, first.Status);
        Assert.Equal("refused", first.GetTagItem("error.type"));
        Assert.Null(first.GetTagItem("http.response.status_code"));
        Assert.Equal("C", second.GetTagItem("balancer.destination"));
        Assert.Equal(200, second.GetTagItem("http.response.status_code"));
        Assert.Equal("C", failedOver.Server.GetTagItem("balancer.destination"));
        Assert.Equal(200, failedOver.Server.GetTagItem("http.response.status_code"));
    }

    [Fact]
    public async Task TracingOn_DestinationAddressChangedByReload_AttemptSpansNameTheNewAddress()
    {
        var exported = new ExportedSpans();
        var seen = new SeenTraceparents();
        await using var lb = await StartTracedAsync(exported, seen);
        var oldPort = lb.Backend("B").Address.Port;
        var newPort = lb.Backend("C").Address.Port;
        for (var i = 0; i < 3; i++)
        {
            await OutsideGetAsync(lb, traceparent: null);
        }

        await Poll.UntilAsync(() => exported.Attempts("B").Any(s => oldPort.Equals(s.GetTagItem("server.port"))), TimeSpan.FromSeconds(5), "an attempt span at B's first address");

        // B now points at C's backend: its spans must follow the config, not what was first seen for B.
        lb.WriteConfig("RoundRobin", c => c["ReverseProxy"]!["Clusters"]!["backends"]!["Destinations"]!["B"]!["Address"] = lb.Backend("C").Address.ToString());
        await Poll.UntilAsync(
            async () =>
            {
                await OutsideGetAsync(lb, traceparent: null);
                return exported.Attempts("B").Any(s => newPort.Equals(s.GetTagItem("server.port")));
            },
            TimeSpan.FromSeconds(10),
            "an attempt span at B's reloaded address");
        Assert.All(exported.Attempts("B"), s => Assert.Equal("127.0.0.1", s.GetTagItem("server.address")));
    }

    [Fact]
    public async Task Detailed_SpansOfAspNetCoreYarpAndHttpClient_BackendGetsTraceparentOfTheOutboundSpan()
    {
        var exported = new ExportedSpans();
        var seen = new SeenTraceparents();
        await using var lb = await StartTracedAsync(exported, seen, detailed: true);
        const string scrapeTraceId = "0af7651916cd43dd8448eb211c80319c";

        await OutsideGetAsync(lb.ManagementAddress, "/metrics", $"00-{scrapeTraceId}-b7ad6b7169203331-01");
        var response = await OutsideGetAsync(lb, traceparent: null);

        var (traceId, parentId) = Parse(seen.Single());
        var trace = await DetailedTraceAsync(exported, traceId);
        Assert.Equal(ActivityKind.Server, trace.Server.Kind);
        Assert.Equal(default, trace.Server.ParentSpanId);
        Assert.Equal("proxy.forwarder", trace.Forwarder.OperationName);
        Assert.Equal(trace.Server.SpanId, trace.Forwarder.ParentSpanId);
        Assert.Equal(BackendOf(response), trace.Forwarder.GetTagItem("proxy.destination_id"));
        Assert.Equal("backends", trace.Forwarder.GetTagItem("proxy.cluster_id"));
        Assert.Equal(ActivityKind.Client, trace.Outbound.Kind);
        Assert.Equal(trace.Forwarder.SpanId, trace.Outbound.ParentSpanId);
        // The backend's parent is the balancer's outbound call: the trace continues exactly there.
        Assert.Equal(trace.Outbound.SpanId.ToHexString(), parentId);
        // Management requests (scrapes, status polls) are not traced.
        Assert.Empty(exported.OfTrace(scrapeTraceId));
    }

    [Fact]
    public async Task Detailed_ClientSentTraceparent_TheBalancerContinuesTheClientsTrace()
    {
        var exported = new ExportedSpans();
        var seen = new SeenTraceparents();
        await using var lb = await StartTracedAsync(exported, seen, detailed: true);

        await OutsideGetAsync(lb, ClientTraceparent);

        var (traceId, parentId) = Parse(seen.Single());
        Assert.Equal(ClientTraceId, traceId);
        var trace = await DetailedTraceAsync(exported, traceId);
        Assert.Equal(ClientSpanId, trace.Server.ParentSpanId.ToHexString());
        Assert.Equal(trace.Outbound.SpanId.ToHexString(), parentId);
    }

    [Fact]
    public async Task Detailed_SampleRatioZero_TracesOnlyWhatClientsSampled()
    {
        var exported = new ExportedSpans();
        var seen = new SeenTraceparents();
        await using var lb = await StartTracedAsync(exported, seen, ratio: 0, detailed: true);

        await OutsideGetAsync(lb, traceparent: null);
        await OutsideGetAsync(lb, ClientTraceparent);
        await DetailedTraceAsync(exported, ClientTraceId);

        Assert.Equal([ClientTraceId], exported.TraceIds());
        // OpenTelemetry still propagates the unsampled trace, flagged as not sampled.
        Assert.EndsWith("-00", seen.All()[0]);
    }

    [Fact]
    public void Sampler_DrawsAtTheRatio_AndAValidParentDecidesAlone()
    {
        var draws = new Queue<double>([0.1, 0.3, 0.24, 0.25, 0.9]);
        var tracing = new ProxyTracing(new FixedOptions(new BalancerOptions { Tracing = { SampleRatio = 0.25 } }), detailed: false, draws.Dequeue, new FakeTimeProvider());

        var decisions = Enumerable.Range(0, 5).Select(_ => tracing.ShouldTrace(null, null, out var ignored)).ToList();

        Assert.Equal([true, false, true, false, false], decisions);
        Assert.True(tracing.ShouldTrace(ClientTraceparent, "vendor=1", out var parent));
        Assert.Equal(ClientTraceId, parent.TraceId.ToHexString());
        Assert.Equal("vendor=1", parent.TraceState);
        Assert.True(parent.IsRemote);
        Assert.False(tracing.ShouldTrace($"00-{ClientTraceId}-{ClientSpanId}-00", null, out _));
        // Not a valid traceparent (all-zero trace id): a new trace, decided by a draw, which fails here.
        draws.Enqueue(0.5);
        Assert.False(tracing.ShouldTrace($"00-{new string('0', 32)}-{ClientSpanId}-01", null, out parent));
        Assert.Equal(default, parent);
        Assert.Empty(draws);
    }

    [Fact]
    public void Cap_RefusesNewTracesOverTheRate_AfterTheDraw_AndNeverAClientsSampledOne()
    {
        var time = new FakeTimeProvider();
        var draws = new Queue<double>([0.1, 0.9, 0.2, 0.3]);
        var registry = new BalancerMetricsRegistry();
        var options = new BalancerOptions { Tracing = { SampleRatio = 0.5, MaxTracesPerSecond = 2 } };
        var tracing = new ProxyTracing(new FixedOptions(options), detailed: false, draws.Dequeue, time, registry.Factory);

        var decisions = Enumerable.Range(0, 4).Select(_ => tracing.ShouldTrace(null, null, out var ignored)).ToList();

        // Drawn in, drawn out, drawn in, drawn in but over the cap of two a second.
        Assert.Equal([true, false, true, false], decisions);
        Assert.Empty(draws);
        Assert.True(tracing.ShouldTrace(ClientTraceparent, null, out _));
        time.Advance(TimeSpan.FromSeconds(0.5));
        draws.Enqueue(0.4);
        Assert.True(tracing.ShouldTrace(null, null, out _));
        Assert.Equal(3, NewTraces(registry, "started"));
        Assert.Equal(1, NewTraces(registry, "rate_limited"));
    }

    [Fact]
    public async Task Cap_ReachedInARealBalancer_LeavesRequestsUntraced_CountsThem_AndAReloadLiftsIt()
    {
        var exported = new ExportedSpans();
        var seen = new SeenTraceparents();
        // One trace a hundred seconds: the first request takes the only one for the whole test.
        await using var lb = await StartTracedAsync(exported, seen, edit: c => c["Balancer"]!["Tracing"]!["MaxTracesPerSecond"] = 0.01);

        await OutsideGetAsync(lb, traceparent: null);
        await OutsideGetAsync(lb, traceparent: null);
        await OutsideGetAsync(lb, ClientTraceparent);

        var first = Parse(seen.All()[0]).TraceId;
        await TraceAsync(exported, first);
        Assert.Null(seen.All()[1]);
        await TraceAsync(exported, ClientTraceId);
        Assert.Equal(new HashSet<string> { first, ClientTraceId }, exported.TraceIds().ToHashSet());
        var samples = await lb.MetricsAsync();
        Assert.Equal(1, samples.Single(s => s.Name == "balancer_tracing_new_traces_total" && s.Labels["result"] == "started").Value);
        Assert.Equal(1, samples.Single(s => s.Name == "balancer_tracing_new_traces_total" && s.Labels["result"] == "rate_limited").Value);

        lb.WriteConfig("RoundRobin", c => c["Balancer"]!["Tracing"] = new JsonObject { ["MaxTracesPerSecond"] = 0 });
        await UntilANewRequestIsTracedAsync(lb, seen, exported, "the reload that lifts the cap to trace a request again");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task TracingOff_NothingListensToTheSources_AndTheClientsTraceStillReachesTheBackend(bool logging)
    {
        var seen = new SeenTraceparents();
        // With a logger enabled ASP.NET Core starts an activity of its own for log scopes (no listener
        // needed); without one there is no activity at all. The client's trace must get through either way.
        await using var lb = await BalancerFixture.StartAsync(
            configure: b =>
            {
                if (logging)
                {
                    b.Logging.AddProvider(new DiscardingLoggerProvider());
                }
            },
            configureBackends: seen.Install);

        await OutsideGetAsync(lb, ClientTraceparent);

        Assert.Null(lb.App.Services.GetService<TracerProvider>());
        foreach (var source in new[] { ProxyTracing.SourceName, TracingServiceCollectionExtensions.YarpActivitySource, "Microsoft.AspNetCore", "System.Net.Http" })
        {
            using var probe = new ActivitySource(source);
            Assert.False(probe.HasListeners(), $"something listens to {source} with tracing off");
        }

        var (traceId, _) = Parse(seen.Single());
        Assert.Equal(ClientTraceId, traceId);
    }

    [Fact]
    public async Task OtlpEndpointInConfig_SwitchesTracingOn_AndTheTraceIsExportedThere()
    {
        var exports = new ConcurrentQueue<(string Path, byte[] Body)>();
        await using var sink = await OtlpSink.StartAsync((path, body) => exports.Enqueue((path, body)));
        var seen = new SeenTraceparents();
        await using var lb = await BalancerFixture.StartAsync(
            edit: config =>
            {
                config[TracingServiceCollectionExtensions.OtlpEndpointKey] = sink.Url.ToString();
                config["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf";
                // Export every 100 ms instead of every 5 s, so the test does not wait.
                config["OTEL_BSP_SCHEDULE_DELAY"] = "100";
            },
            configureBackends: seen.Install);

        await OutsideGetAsync(lb, traceparent: null);

        Assert.NotNull(lb.App.Services.GetService<TracerProvider>());
        var (traceId, _) = Parse(seen.Single());
        var traceIdBytes = Convert.FromHexString(traceId);
        await Poll.UntilAsync(() => exports.Any(e => e.Body.AsSpan().IndexOf(traceIdBytes) >= 0), TimeSpan.FromSeconds(10), "the trace to arrive at the OTLP endpoint");
        Assert.All(exports, e => Assert.Equal("/v1/traces", e.Path));
    }

    [Theory]
    [InlineData(null, "balancer")]
    [InlineData("edge-lb", "edge-lb")]
    public void ServiceName_DefaultsToBalancer_AndOtelServiceNameWins(string? configured, string expected)
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["OTEL_SERVICE_NAME"] = configured }).Build();
        var services = new ServiceCollection().AddSingleton<IConfiguration>(config);
        services.AddBalancerTracing(config, _ => { });

        using var provider = services.BuildServiceProvider();
        var resource = provider.GetRequiredService<TracerProvider>().GetResource();

        Assert.Equal(expected, resource.Attributes.Single(a => a.Key == "service.name").Value);
    }

    [Fact]
    public void OtlpEndpoint_NotAUrl_IsRejectedNamingTheKey()
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            [TracingServiceCollectionExtensions.OtlpEndpointKey] = "collector:4317",
        }).Build();

        var errors = ConfigValidator.Validate(config);

        Assert.Contains("OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4317' is not an absolute http:// or https:// URL", errors);
    }

    /// <summary>Sends requests without a traceparent until one reaches the backend traced (after a reload), and waits for its spans.</summary>
    private static async Task UntilANewRequestIsTracedAsync(BalancerFixture lb, SeenTraceparents seen, ExportedSpans exported, string because)
    {
        await Poll.UntilAsync(
            async () =>
            {
                await OutsideGetAsync(lb, traceparent: null);
                return seen.All()[^1] is not null;
            },
            TimeSpan.FromSeconds(10),
            because);
        await TraceAsync(exported, Parse(seen.All()[^1]).TraceId);
    }

    private static double NewTraces(BalancerMetricsRegistry registry, string result)
    {
        using var text = new MemoryStream();
        registry.Registry.CollectAndExportAsTextAsync(text).GetAwaiter().GetResult();
        var samples = PrometheusText.Parse(System.Text.Encoding.UTF8.GetString(text.ToArray()));
        return samples.Single(s => s.Name == "balancer_tracing_new_traces_total" && s.Labels["result"] == result).Value;
    }

    /// <summary>The balancer with the tracing of production, exported in memory.</summary>
    private static Task<BalancerFixture> StartTracedAsync(ExportedSpans exported, SeenTraceparents seen, double? ratio = null, Action<JsonObject>? edit = null, bool detailed = false) =>
        BalancerFixture.StartAsync(
            edit: config =>
            {
                var tracing = new JsonObject { ["Detailed"] = detailed };
                if (ratio is double value)
                {
                    tracing["SampleRatio"] = value;
                }

                config["Balancer"]!["Tracing"] = tracing;

                edit?.Invoke(config);
            },
            configure: b => b.Services.AddBalancerTracing(b.Configuration, t => t.AddInMemoryExporter(exported)),
            configureBackends: seen.Install);

    /// <summary>
    /// A GET written straight to the socket, as from a client outside this process: the ActivityListener
    /// is process-wide, so a test HttpClient would be traced too and put its own traceparent on the request.
    /// Returns the response head.
    /// </summary>
    private static async Task<string> OutsideGetAsync(BalancerFixture lb, string? traceparent) => await OutsideGetAsync(lb.ProxyAddress, "/", traceparent);

    private static async Task<string> OutsideGetAsync(Uri address, string path, string? traceparent)
    {
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(address.Host, address.Port);
        var stream = tcp.GetStream();
        var request = $"GET {path} HTTP/1.1\r\nHost: {address.Authority}\r\nConnection: close\r\n"
            + (traceparent is null ? string.Empty : $"traceparent: {traceparent}\r\n") + "\r\n";
        await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(request));
        using var reader = new StreamReader(stream, System.Text.Encoding.ASCII);
        var response = await reader.ReadToEndAsync();
        Assert.StartsWith("HTTP/1.1 200 ", response, StringComparison.Ordinal);
        return response[..response.IndexOf("\r\n\r\n", StringComparison.Ordinal)];
    }

    private static string BackendOf(string responseHead) =>
        responseHead.Split("\r\n").Single(l => l.StartsWith("X-Backend:", StringComparison.OrdinalIgnoreCase))["X-Backend:".Length..].Trim();

    private static (string TraceId, string ParentId) Parse(string? traceparent)
    {
        Assert.NotNull(traceparent);
        var match = Traceparent().Match(traceparent);
        Assert.True(match.Success, $"not a W3C traceparent: {traceparent}");
        return (match.Groups["trace"].Value, match.Groups["parent"].Value);
    }

    /// <summary>
    /// The balancer's spans of one proxied request once its server span has ended (after the response was
    /// sent, so it may still be open when the client has its answer): the server span and its attempts, in
    /// the order they started.
    /// </summary>
    private static async Task<(Activity Server, List<Activity> Attempts)> TraceAsync(ExportedSpans exported, string traceId)
    {
        await Poll.UntilAsync(() => exported.OfTrace(traceId).Any(s => s.Kind == ActivityKind.Server), TimeSpan.FromSeconds(5), $"the server span of trace {traceId}");
        var spans = exported.OfTrace(traceId);
        Assert.All(spans, s => Assert.Equal(ProxyTracing.SourceName, s.Source.Name));
        var server = Assert.Single(spans, s => s.Kind == ActivityKind.Server);
        var attempts = spans.Where(s => s != server).OrderBy(s => s.StartTimeUtc).ToList();
        Assert.All(attempts, a =>
        {
            Assert.Equal(ActivityKind.Client, a.Kind);
            Assert.Equal(server.SpanId, a.ParentSpanId);
        });
        return (server, attempts);
    }

    /// <summary>
    /// With <c>Balancer:Tracing:Detailed</c>, the four spans of one proxied request once all have ended (the balancer's server span ends after
    /// the response was sent, so it may still be open when the client has its answer). The backends run
    /// in this process, so the backend's own server span is in the trace too.
    /// </summary>
    private static async Task<(Activity Server, Activity Forwarder, Activity Outbound)> DetailedTraceAsync(ExportedSpans exported, string traceId)
    {
        await Poll.UntilAsync(() => exported.OfTrace(traceId).Count >= 4, TimeSpan.FromSeconds(5), $"4 spans of trace {traceId}");
        var spans = exported.OfTrace(traceId);
        Assert.True(spans.Count == 4, "spans: " + string.Join("; ", spans.Select(s => $"{s.Source.Name} {s.DisplayName} {s.SpanId} parent {s.ParentSpanId}")));
        var outbound = Assert.Single(spans, s => s.Source.Name == "System.Net.Http");
        var forwarder = Assert.Single(spans, s => s.Source.Name == TracingServiceCollectionExtensions.YarpActivitySource);
        var servers = spans.Where(s => s.Source.Name == "Microsoft.AspNetCore").ToList();
        Assert.Equal(2, servers.Count);
        Assert.Single(servers, s => s.ParentSpanId == outbound.SpanId);
        return (Assert.Single(servers, s => s.ParentSpanId != outbound.SpanId), forwarder, outbound);
    }

    [GeneratedRegex("^00-(?<trace>[0-9a-f]{32})-(?<parent>[0-9a-f]{16})-0[01]$")]
    private static partial Regex Traceparent();

    /// <summary>What the in-memory exporter was given; it adds from the threads that end spans.</summary>
    private sealed class ExportedSpans : Collection<Activity>
    {
        private readonly Lock _gate = new();

        public List<string> TraceIds()
        {
            lock (_gate)
            {
                return [.. this.Select(a => a.TraceId.ToHexString()).Distinct()];
            }
        }

        /// <summary>The attempt (client) spans at <paramref name="destination"/>.</summary>
        public List<Activity> Attempts(string destination)
        {
            lock (_gate)
            {
                return [.. this.Where(a => a.Kind == ActivityKind.Client && (string?)a.GetTagItem("balancer.destination") == destination)];
            }
        }

        public List<Activity> OfTrace(string traceId)
        {
            lock (_gate)
            {
                return [.. this.Where(a => a.TraceId.ToHexString() == traceId)];
            }
        }

        protected override void InsertItem(int index, Activity item)
        {
            lock (_gate)
            {
                base.InsertItem(index, item);
            }
        }
    }

    /// <summary>The <c>traceparent</c> of every request a backend received (null when there was none).</summary>
    private sealed class SeenTraceparents : IStartupFilter
    {
        private readonly ConcurrentQueue<string?> _values = new();

        public void Install(WebApplicationBuilder backend) => backend.Services.AddSingleton<IStartupFilter>(this);

        public string? Single() => Assert.Single(_values);

        public List<string?> All() => [.. _values];

        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use((context, nextMiddleware) =>
            {
                _values.Enqueue(context.Request.Headers.TryGetValue("traceparent", out var value) ? value.ToString() : null);
                return nextMiddleware(context);
            });
            next(app);
        };
    }

    private sealed class FixedOptions(BalancerOptions value) : IOptionsMonitor<BalancerOptions>
    {
        public BalancerOptions CurrentValue => value;

        public BalancerOptions Get(string? name) => value;

        public IDisposable? OnChange(Action<BalancerOptions, string?> listener) => null;
    }

    private sealed class DiscardingLoggerProvider : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Discarding();

        public void Dispose()
        {
        }

        private sealed class Discarding : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
            }
        }
    }
}
