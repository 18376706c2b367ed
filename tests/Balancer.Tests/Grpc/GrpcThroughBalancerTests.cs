using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;
using Balancer.Tests.Tls;
using Grpc.Core;
using Grpc.Net.Client;
using SampleBackend.Rpc;
using Xunit.Abstractions;
using static Balancer.Tests.Grpc.GrpcTestConfig;

namespace Balancer.Tests.Grpc;

/// <summary>
/// gRPC through the balancer with Grpc.Net.Client, each test over ONE channel (one HTTP/2 connection), over
/// TLS (ALPN h2) and over cleartext HTTP/2 (h2c), to three real sample backends' gRPC ports.
/// </summary>
[Collection(IntegrationCollection.Name)]
public sealed class GrpcThroughBalancerTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(10);
    private readonly TestCertificates _certificates = new();

    [Theory]
    [InlineData("https")]
    [InlineData("h2c")]
    public async Task OneChannel_30UnaryCalls_SplitTenTenTen_ByXBackend(string scheme)
    {
        await using var lb = await StartAsync();
        using var channel = Channel(lb, scheme);
        var greeter = new Greeter.GreeterClient(channel);

        var counts = new Dictionary<string, int>();
        for (var i = 0; i < 30; i++)
        {
            using var call = greeter.SayHelloAsync(new HelloRequest { Name = "lb" });
            var reply = await call.ResponseAsync;
            var backend = (await call.ResponseHeadersAsync).GetValue("x-backend")!;
            Assert.Equal(backend, reply.Backend);
            counts[backend] = counts.GetValueOrDefault(backend) + 1;
        }

        Assert.Equal(new Dictionary<string, int> { ["A"] = 10, ["B"] = 10, ["C"] = 10 }, counts);
        var metrics = await lb.MetricsAsync();
        Assert.Equal(30, metrics.Value("balancer_requests_by_protocol_total", ("cluster", Cluster), ("protocol", "gRPC")));
        Assert.Equal(0, metrics.Value("balancer_requests_by_protocol_total", ("cluster", Cluster), ("protocol", "HTTP/2")));
        foreach (var name in new[] { "A", "B", "C" })
        {
            Assert.Equal(10, metrics.Value("balancer_destination_grpc_calls_total", ("cluster", Cluster), ("destination", name), ("grpc_status", "OK")));
        }
    }

    [Theory]
    [InlineData("https")]
    [InlineData("h2c")]
    public async Task ServerStream_Of100Messages_ArrivesWhole_FromOneBackend(string scheme)
    {
        await using var lb = await StartAsync();
        using var channel = Channel(lb, scheme);
        var counter = new Counter.CounterClient(channel);

        var backends = new List<string>();
        for (var round = 0; round < 3; round++)
        {
            using var call = counter.Count(new CountRequest { Count = 100, IntervalMs = round == 0 ? 1 : 0 });
            var backend = (await call.ResponseHeadersAsync).GetValue("x-backend")!;
            var indexes = new List<int>();
            await foreach (var message in call.ResponseStream.ReadAllAsync())
            {
                Assert.Equal(backend, message.Backend);
                indexes.Add(message.Index);
            }

            Assert.Equal(Enumerable.Range(1, 100), indexes);
            Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
            backends.Add(backend);
        }

        // Each stream is one call, so round robin hands the three to the three backends.
        Assert.Equal(["A", "B", "C"], backends.Order());
    }

    [Fact]
    public async Task KillOneBackend_UnderGrpcLoadOnOneChannel_NoUnaryCallFails()
    {
        await using var lb = await StartAsync(GrpcHealthChecks());
        foreach (var name in new[] { "A", "B", "C" })
        {
            await WaitForHealthAsync(lb, name, "Up", Limit);
        }

        using var channel = Channel(lb, "https");
        var greeter = new Greeter.GreeterClient(channel);
        var failures = new List<string>();
        var succeeded = new Dictionary<string, int>();
        using var stop = new CancellationTokenSource();
        var workers = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    var reply = await greeter.SayHelloAsync(new HelloRequest { Name = "load" });
                    lock (succeeded)
                    {
                        succeeded[reply.Backend] = succeeded.GetValueOrDefault(reply.Backend) + 1;
                    }
                }
                catch (RpcException e)
                {
                    lock (failures)
                    {
                        failures.Add($"{e.StatusCode}: {e.Status.Detail}");
                    }
                }
            }
        })).ToList();

        int Total()
        {
            lock (succeeded)
            {
                return succeeded.Values.Sum();
            }
        }

        await Poll.UntilAsync(() => Total() >= 300, TimeSpan.FromSeconds(20), "gRPC load to flow");
        // Calls in flight at B when it dies are the hard case (the request went out, no answer came back):
        // slowed down, B is sure to hold some at the kill.
        lb.Backend("B").State.DelayMs = 60_000;
        await Poll.UntilAsync(async () => await InFlightAsync(lb, "B") >= 2, Limit, "calls in flight at B");
        int ServedByB()
        {
            lock (succeeded)
            {
                return succeeded.GetValueOrDefault("B");
            }
        }

        var servedByBAtKill = ServedByB();
        var killed = Stopwatch.StartNew();
        await lb.Backend("B").KillAsync();
        await WaitForHealthAsync(lb, "B", "Down", Limit);
        var down = killed.Elapsed;
        var atDown = Total();
        await Poll.UntilAsync(() => Total() >= atDown + 600, TimeSpan.FromSeconds(30), "600 more calls after B went down");
        await stop.CancelAsync();
        await Task.WhenAll(workers);

        var retries = (await lb.MetricsAsync()).Where(s => s.Name == "balancer_retries_total" && s.Labels.GetValueOrDefault("cluster") == Cluster && s.Labels.GetValueOrDefault("destination") == "B")
            .ToDictionary(s => s.Labels["reason"], s => s.Value);
        output.WriteLine($"calls ok: {string.Join(", ", succeeded.OrderBy(s => s.Key))}; failed: {failures.Count}; B answered {ServedByB() - servedByBAtKill} after the kill; B down in /status {down.TotalMilliseconds:0} ms after the kill; retries off B by reason: {string.Join(", ", retries)}");
        Assert.True(failures.Count == 0, string.Join("; ", failures.Take(5)));
        Assert.True(succeeded.GetValueOrDefault("B") > 0, "B served nothing before it was killed");
        // The calls cut off at B were sent again, their bodies replayed.
        Assert.True(retries.GetValueOrDefault("reset") >= 2, $"retries: {string.Join(", ", retries)}");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AllDown_AnswersUnavailable_AtOnce_TrailersOnly(bool healthChecksKnow)
    {
        await using var lb = await StartAsync(healthChecksKnow ? GrpcHealthChecks() : null);
        foreach (var backend in lb.Backends)
        {
            if (healthChecksKnow)
            {
                backend.State.Healthy = false;
            }
            else
            {
                await backend.KillAsync();
            }
        }

        if (healthChecksKnow)
        {
            foreach (var name in new[] { "A", "B", "C" })
            {
                await WaitForHealthAsync(lb, name, "Down", Limit);
            }
        }

        using var channel = Channel(lb, "https");
        var clock = Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<RpcException>(() => new Greeter.GreeterClient(channel).SayHelloAsync(new HelloRequest()).ResponseAsync);
        var took = clock.Elapsed;

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Equal("no healthy backend is available", error.Status.Detail);
        Assert.True(took < TimeSpan.FromSeconds(2), $"UNAVAILABLE took {took.TotalMilliseconds:0} ms");

        // On the wire: HTTP 200, application/grpc, grpc-status 14 in the headers, no body.
        using var http = new HttpClient(GrpcCallCommand.CreateHandler(_certificates.CaPath)) { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(lb.ListenerOf("https"), "/sample.v1.Greeter/SayHello")) { Content = new ByteArrayContent([0, 0, 0, 0, 0]) };
        request.Content.Headers.ContentType = new("application/grpc");
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/grpc", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("14", response.Headers.GetValues("grpc-status").Single());
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task CallCutOff_WithNoOtherDestination_EndsUnavailable_NotABareHttp502()
    {
        await using var lb = await StartAsync(config =>
        {
            var destinations = config["ReverseProxy"]!["Clusters"]![Cluster]!["Destinations"]!.AsObject();
            destinations.Remove("A");
            destinations.Remove("C");
        });
        var b = lb.Backend("B");
        b.State.DelayMs = 5000;
        using var channel = Channel(lb, "h2c");
        var received = b.State.Received;
        using var call = new Greeter.GreeterClient(channel).SayHelloAsync(new HelloRequest());
        // B's own count, not the balancer's in-flight one: that starts before the connection to B is made, and
        // a kill then would be a refused connection, which is an all-down answer.
        await Poll.UntilAsync(() => b.State.Received > received, Limit, "the call received by B");

        await b.KillAsync();

        // A bare 502 would reach the client as UNAVAILABLE "Bad gateway"; the balancer says what happened.
        var error = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync);
        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.StartsWith("the backend failed", error.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(1, (await lb.MetricsAsync()).Value("balancer_destination_grpc_calls_total", ("cluster", Cluster), ("destination", "B"), ("grpc_status", "UNAVAILABLE")));
    }

    [Fact]
    public async Task FailedCalls_CountByGrpcStatus_ProtocolsCountApart()
    {
        await using var lb = await StartAsync();
        using var channel = Channel(lb, "h2c");
        var greeter = new Greeter.GreeterClient(channel);

        for (var i = 0; i < 3; i++)
        {
            await greeter.SayHelloAsync(new HelloRequest());
            var error = await Assert.ThrowsAsync<RpcException>(() => greeter.SayHelloAsync(new HelloRequest { FailWith = (int)StatusCode.ResourceExhausted }).ResponseAsync);
            Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        }

        using var http1 = new HttpClient { BaseAddress = lb.ListenerOf("http") };
        using var http2 = new HttpClient { BaseAddress = lb.ListenerOf("h2c"), DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        for (var i = 0; i < 2; i++)
        {
            (await http1.GetAsync("/")).EnsureSuccessStatusCode();
        }

        for (var i = 0; i < 4; i++)
        {
            using var response = await http2.GetAsync("/");
            Assert.Equal(new Version(2, 0), response.Version);
            response.EnsureSuccessStatusCode();
        }

        var metrics = await lb.MetricsAsync();
        double Sum(string name, string label, string value) =>
            metrics.Where(s => s.Name == name && s.Labels.GetValueOrDefault("cluster") == Cluster && s.Labels.GetValueOrDefault(label) == value).Sum(s => s.Value);
        Assert.Equal(3, Sum("balancer_destination_grpc_calls_total", "grpc_status", "OK"));
        Assert.Equal(3, Sum("balancer_destination_grpc_calls_total", "grpc_status", "RESOURCE_EXHAUSTED"));
        // Every gRPC answer was an HTTP 200: the status label is what tells the failures apart.
        Assert.Equal(6, Sum("balancer_destination_requests_total", "code", "200"));
        Assert.Equal(6, metrics.Value("balancer_requests_by_protocol_total", ("cluster", Cluster), ("protocol", "gRPC")));
        Assert.Equal(2, metrics.Value("balancer_requests_by_protocol_total", ("cluster", "backends"), ("protocol", "HTTP/1.1")));
        Assert.Equal(4, metrics.Value("balancer_requests_by_protocol_total", ("cluster", "backends"), ("protocol", "HTTP/2")));
        Assert.Equal(0, metrics.Value("balancer_requests_by_protocol_total", ("cluster", "backends"), ("protocol", "gRPC")));
    }

    [Fact]
    public async Task GrpcCallCommand_ThroughTheBalancerOverTls_Prints101010()
    {
        await using var lb = await StartAsync();
        var output = new StringWriter();

        var exit = GrpcCallCommand.Run(["--grpc-call", lb.ListenerOf("https").ToString(), "--ca", _certificates.CaPath, "--calls", "30", "--stream", "100"], output, output);

        Assert.True(exit == 0, output.ToString());
        Assert.Contains("stream: 100 of 100 messages from x-backend=", output.ToString(), StringComparison.Ordinal);
        Assert.EndsWith("A=10 B=10 C=10" + Environment.NewLine, output.ToString(), StringComparison.Ordinal);
    }

    public void Dispose() => _certificates.Dispose();

    private static async Task<int> InFlightAsync(BalancerFixture lb, string destination)
    {
        var cluster = (await lb.StatusAsync())["clusters"]!.AsArray().Single(c => (string)c!["id"]! == Cluster)!;
        return (int)cluster["destinations"]!.AsArray().Single(d => (string)d!["id"]! == destination)!["inFlight"]!;
    }

    /// <summary>Three gRPC backends; http://, https:// and h2c:// listeners; the test CA's certificate.</summary>
    private Task<BalancerFixture> StartAsync(Action<JsonObject>? edit = null)
    {
        var certificate = _certificates.Issue("server");
        return BalancerFixture.StartAsync("RoundRobin", config =>
        {
            TlsConfig.Https(certificate, "h2c://127.0.0.1:0")(config);
            edit?.Invoke(config);
        }, grpc: true);
    }

    private GrpcChannel Channel(BalancerFixture lb, string scheme) =>
        GrpcChannel.ForAddress(lb.ListenerOf(scheme), new GrpcChannelOptions { HttpHandler = GrpcCallCommand.CreateHandler(_certificates.CaPath) });
}
