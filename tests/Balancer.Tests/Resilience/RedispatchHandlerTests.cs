using Balancer.Health;
using Balancer.Resilience;
using Balancer.Telemetry;
using Balancer.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Polly;
using Polly.CircuitBreaker;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Tests.Resilience;

/// <summary>
/// The outbound handler against a real socket that never answers, with the real health tracker deciding
/// when a destination is Down (fake time only for its reactivation timers).
/// </summary>
[Trait("Category", "Unit")]
public sealed class RedispatchHandlerTests : IAsyncLifetime
{
    private static readonly TimeSpan Period = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly ServiceProvider _services;
    private readonly DestinationHealthTracker _tracker;
    private readonly DownSignals _signals;
    private readonly ClusterState _cluster;
    private readonly DestinationState _a;
    private readonly DestinationState _b;
    private readonly SilentBackend _silent = SilentBackend.Start();
    private readonly WithdrawableClient _client;
    private readonly CancellationTokenSource _end = new();

    public RedispatchHandlerTests()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddReverseProxy();
        _services = services.BuildServiceProvider();
        var updater = _services.GetRequiredService<IClusterDestinationsUpdater>();
        _tracker = new DestinationHealthTracker(updater, _time, new BalancerMetricsRegistry(), NullLogger<DestinationHealthTracker>.Instance);
        _signals = new DownSignals(_tracker);
        _cluster = new ClusterState("c", new ClusterModel(
            new ClusterConfig { ClusterId = "c", HealthCheck = new HealthCheckConfig { Passive = new PassiveHealthCheckConfig { Enabled = true } } },
            new HttpMessageInvoker(new SocketsHttpHandler())));
        _a = Add("A");
        _b = Add("B");
        updater.UpdateAllDestinations(_cluster);
        _tracker.SetActive(_cluster, [new(_a, DestinationHealth.Healthy), new(_b, DestinationHealth.Healthy)]);
        var sends = new BreakerHandler(pipelineFor: null) { InnerHandler = new SocketsHttpHandler() };
        _client = new WithdrawableClient(sends, sends, _signals);
    }

    [Fact]
    public async Task MarkedRequest_DestinationMarkedDown_WithdrawnAtOnce_OthersKeepWaiting()
    {
        var onB = Send(_b);
        var onA = Send(_a);
        var unmarked = Send(null);
        await Poll.UntilAsync(() => _silent.RequestLines.Count == 3, Wait, "three requests to reach the silent backend");

        MarkDown(_b);

        var withdrawn = await Assert.ThrowsAsync<DestinationMarkedDownException>(() => onB.WaitAsync(Wait));
        Assert.Equal(FailureKind.MarkedDown, TransportFailure.Classify(ForwarderError.Request, withdrawn));
        Assert.Equal("marked_down", TransportFailure.Label(FailureKind.MarkedDown));
        // The same connection failure for a request not marked, or marked for a destination still up: they wait on.
        Assert.False(onA.IsCompleted);
        Assert.False(unmarked.IsCompleted);
    }

    [Fact]
    public async Task RequestSentWhileDown_NotWithdrawnByThatFall_WithdrawnByTheNextOne()
    {
        MarkDown(_b);
        var sentWhileDown = Send(_b);
        await Poll.UntilAsync(() => _silent.RequestLines.Count == 1, Wait, "the request to reach the silent backend");
        Assert.False(sentWhileDown.IsCompleted);

        // The passive failure expires (Down -> Unknown), and B fails again.
        _time.Advance(Period);
        Assert.NotEqual("Down", Balancer.Health.DestinationHealthView.Of(_b));
        Assert.False(sentWhileDown.IsCompleted);
        MarkDown(_b);

        await Assert.ThrowsAsync<DestinationMarkedDownException>(() => sentWhileDown.WaitAsync(Wait));
    }

    [Fact]
    public async Task ResponseHeadersArrived_DestinationMarkedDown_BodyStillCompletes()
    {
        await using var slow = SilentBackend.Start("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
        var request = new HttpRequestMessage(HttpMethod.Get, slow.Address);
        using var response = await _client.For(_b).SendAsync(request, _end.Token).WaitAsync(Wait);

        MarkDown(_b);
        var body = response.Content.ReadAsStringAsync(_end.Token);
        await slow.SendToAnsweredAsync("hello");

        Assert.Equal("hello", await body.WaitAsync(Wait));
    }

    [Fact]
    public async Task ThroughACircuitBreaker_AnsweredRequestReturnsItsResponse_MarkedRequestIsWithdrawn()
    {
        var judged = 0;
        var pipeline = new ResiliencePipelineBuilder<HttpResponseMessage>().AddCircuitBreaker(new CircuitBreakerStrategyOptions<HttpResponseMessage>
        {
            ShouldHandle = _ =>
            {
                Interlocked.Increment(ref judged);
                return ValueTask.FromResult(false);
            },
        }).Build();
        var sends = new BreakerHandler(_ => pipeline) { InnerHandler = new SocketsHttpHandler() };
        using var client = new WithdrawableClient(sends, sends, _signals);
        await using var answering = SilentBackend.Start("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");

        using var answered = await client.For(_a).SendAsync(new HttpRequestMessage(HttpMethod.Get, answering.Address), _end.Token).WaitAsync(Wait);
        var body = answered.Content.ReadAsStringAsync(_end.Token);
        await answering.SendToAnsweredAsync("ok");
        Assert.Equal("ok", await body.WaitAsync(Wait));

        var onB = client.For(_b).SendAsync(new HttpRequestMessage(HttpMethod.Get, _silent.Address), _end.Token);
        await Poll.UntilAsync(() => _silent.RequestLines.Count == 1, Wait, "the request to reach the silent backend");
        Assert.False(onB.IsCompleted);
        MarkDown(_b);

        await Assert.ThrowsAsync<DestinationMarkedDownException>(() => onB.WaitAsync(Wait));
        // Both outcomes went through the breaker's judgement.
        Assert.Equal(2, Volatile.Read(ref judged));
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _end.CancelAsync();
        _client.Dispose();
        await _silent.DisposeAsync();
        _signals.Dispose();
        _tracker.Dispose();
        await _services.DisposeAsync();
        _end.Dispose();
    }

    private void MarkDown(DestinationState destination) =>
        _tracker.SetPassive(_cluster, destination, DestinationHealth.Unhealthy, Period, "request failed: timeout", clearedByProbe: false);

    private Task<HttpResponseMessage> Send(DestinationState? withdrawableFrom)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, _silent.Address);
        return (withdrawableFrom is null ? _client : _client.For(withdrawableFrom)).SendAsync(request, _end.Token);
    }

    private DestinationState Add(string id)
    {
        var destination = new DestinationState(id, new DestinationModel(new DestinationConfig { Address = $"http://127.0.0.1/{id}" }));
        _cluster.Destinations.TryAdd(id, destination);
        return destination;
    }
}
