using System.Collections.Concurrent;
using System.Net;
using Balancer.Health;
using Balancer.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Tests.Health;

/// <summary>
/// The active health monitor with fake time: a prompt first round through the cap, then each destination
/// probed once per interval at its own moment, a slow destination never probed twice at once, and a removed
/// destination no longer probed.
/// </summary>
[Trait("Category", "Unit")]
public sealed class SpreadHealthMonitorTests : IDisposable
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly ServiceProvider _services;
    private readonly IClusterDestinationsUpdater _updater;
    private readonly Backend _backend;
    private readonly RecordingPolicy _policy = new();
    private readonly ClusterState _cluster;

    public SpreadHealthMonitorTests()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddReverseProxy();
        _services = services.BuildServiceProvider();
        _updater = _services.GetRequiredService<IClusterDestinationsUpdater>();
        _backend = new Backend(_time);
        _cluster = new ClusterState("c", new ClusterModel(
            new ClusterConfig
            {
                ClusterId = "c",
                HealthCheck = new HealthCheckConfig
                {
                    Active = new ActiveHealthCheckConfig { Enabled = true, Interval = Interval, Timeout = TimeSpan.FromSeconds(15) },
                },
            },
            new HttpMessageInvoker(_backend)));
        for (var i = 0; i < 10; i++)
        {
            Add($"d{i}");
        }

        _updater.UpdateAllDestinations(_cluster);
    }

    [Fact]
    public async Task FirstRound_EveryDestinationAtOnceThroughTheCap_ThenInitialProbeCompleted()
    {
        using var monitor = Monitor(maxConcurrent: 3);
        _backend.Hold = true;
        monitor.OnClusterAdded(_cluster);

        var first = monitor.CheckHealthAsync([_cluster]);
        await Poll.UntilAsync(() => _backend.Started == 3 && monitor.Waiting == 7, Deadline, "3 probes out, 7 waiting");
        Assert.False(monitor.InitialProbeCompleted);

        _backend.ReleaseOne();
        await Poll.UntilAsync(() => _backend.Started == 4, Deadline, "a fourth probe once one ended");
        _backend.Hold = false;
        _backend.ReleaseAll();
        await first.WaitAsync(Deadline);

        Assert.True(monitor.InitialProbeCompleted);
        Assert.Equal(3, _backend.MaxInFlight);
        // All at start: no fake time passed.
        Assert.All(_backend.Sends, s => Assert.Equal(_time.Start, s.At));
        Assert.Equal(Ids(), _policy.Results.Select(r => r.Destination).Order());
    }

    [Fact]
    public async Task FirstRound_2000Destinations_JudgedOneByOne_AllUp_WithoutRebuildingTheAvailableList()
    {
        // YARP's own ConsecutiveFailures policy reporting to the balancer's tracker, as the host wires them.
        var services = new ServiceCollection().AddLogging();
        services.AddReverseProxy();
        services.AddSingleton<TimeProvider>(_time);
        services.AddSingleton<Balancer.Telemetry.BalancerMetricsRegistry>();
        services.AddSingleton<DestinationHealthTracker>();
        services.AddSingleton<IDestinationHealthUpdater>(sp => sp.GetRequiredService<DestinationHealthTracker>());
        using var provider = services.BuildServiceProvider();
        var large = new ClusterState("large", new ClusterModel(_cluster.Model.Config with { ClusterId = "large" }, new HttpMessageInvoker(_backend)));
        for (var i = 0; i < 2000; i++)
        {
            var id = $"d{i}";
            large.Destinations.TryAdd(id, new DestinationState(id, new DestinationModel(new DestinationConfig { Address = $"http://{id}.test/" })));
        }

        provider.GetRequiredService<IClusterDestinationsUpdater>().UpdateAllDestinations(large);
        var before = large.DestinationsState.AvailableDestinations;
        using var monitor = new SpreadHealthMonitor(
            Options.Create(new ActiveHealthCheckMonitorOptions()),
            provider.GetServices<IActiveHealthCheckPolicy>(),
            new Factory(),
            _time,
            new ActiveHealthCheckOptions { MaxConcurrentProbes = 256 },
            NullLogger<SpreadHealthMonitor>.Instance);
        monitor.OnClusterAdded(large);
        await monitor.CheckHealthAsync([large]).WaitAsync(Deadline);

        Assert.True(monitor.InitialProbeCompleted);
        Assert.Equal(2000, _backend.Started);
        Assert.All(large.Destinations.Values, d => Assert.Equal(DestinationHealth.Healthy, d.Health.Active));
        // Unknown -> Healthy leaves every destination available: one probe at a time must not rebuild the list, O(N) each.
        Assert.Same(before, large.DestinationsState.AvailableDestinations);
    }

    [Fact]
    public async Task AfterTheFirstRound_EachDestinationOncePerInterval_EachAtItsOwnMoment()
    {
        using var monitor = await StartedAsync(maxConcurrent: 3);

        // A destination's first scheduled probe comes at least half an interval after the first round.
        Step(Interval);
        var firstCycle = SendsSince(_time.Start + TimeSpan.FromTicks(1));
        Assert.All(firstCycle, s => Assert.True(s.At - _time.Start >= Interval / 2, $"{s.Destination} again at {s.At - _time.Start}"));

        var from = _time.GetUtcNow();
        Step(3 * Interval);
        var sends = SendsSince(from + TimeSpan.FromTicks(1));
        Assert.Equal(30, sends.Count);
        foreach (var group in sends.GroupBy(s => s.Destination))
        {
            var times = group.Select(s => s.At).Order().ToList();
            Assert.Equal(3, times.Count);
            Assert.Equal(Interval, times[1] - times[0]);
            Assert.Equal(Interval, times[2] - times[1]);
        }

        // Ten different moments in the interval, not one burst.
        Assert.Equal(10, sends.Select(s => (s.At - from).Ticks % Interval.Ticks).Distinct().Count());
        Assert.Equal(1, _backend.MaxInFlight);
        Assert.Equal(10 + 30 + firstCycle.Count, _policy.Results.Count);
    }

    [Fact]
    public async Task SlowDestination_NotProbedAgainWhileItsProbeIsOut_FailsAtItsTimeout()
    {
        using var monitor = await StartedAsync(maxConcurrent: 3);
        _backend.Hang = "d4";
        var first = StepUntilSent("d4");

        // Timeout 15 s, interval 10 s: at its next moment the first probe is still out, so no second one.
        Step(Interval);
        Assert.Equal([first], HangingSends());
        Step(TimeSpan.FromSeconds(5));
        await Poll.UntilAsync(() => _policy.Results.Any(r => r.Destination == "d4" && !r.Success), Deadline, "the probe of d4 failed at its timeout");
        var failure = Assert.Single(_policy.Results, r => r.Destination == "d4" && !r.Success);
        Assert.IsAssignableFrom<OperationCanceledException>(failure.Exception);

        // Its moment after that gets a probe again.
        Step(Interval / 2);
        Assert.Equal([first, first + 2 * Interval], HangingSends());
    }

    [Fact]
    public async Task RemovedDestination_NoLongerProbed_AddedOneProbedWithinAnInterval()
    {
        using var monitor = await StartedAsync(maxConcurrent: 3);
        Step(Interval);

        var rebuilds = monitor.TargetRebuilds;
        _cluster.Destinations.TryRemove("d3", out _);
        Add("d10");
        _updater.UpdateAllDestinations(_cluster);
        monitor.OnClusterChanged(_cluster);
        Assert.Equal(rebuilds + 1, monitor.TargetRebuilds);
        var from = _time.GetUtcNow();
        Step(Interval);
        Step(Interval);

        var sends = SendsSince(from + TimeSpan.FromTicks(1));
        Assert.DoesNotContain(sends, s => s.Destination == "d3");
        Assert.Equal(Ids().Where(id => id != "d3").Append("d10").Order(), sends.Select(s => s.Destination).Distinct().Order());
        Assert.Equal(20, sends.Count);
        // The reload moved no destination's moment in the interval.
        foreach (var group in SendsSince(_time.Start + TimeSpan.FromTicks(1)).GroupBy(s => s.Destination))
        {
            Assert.Single(group.Select(s => s.At.UtcTicks % Interval.Ticks).Distinct());
        }
    }

    [Fact]
    public async Task ReloadChangingOnlyWeights_KeepsTheTargets_EachDestinationStillOncePerIntervalAtItsMoment()
    {
        using var monitor = await StartedAsync(maxConcurrent: 3);
        Step(Interval);
        var rebuilds = monitor.TargetRebuilds;

        // As YARP applies a reload that changed every weight: a new model for each kept state, then a new list of the same states.
        foreach (var destination in _cluster.Destinations.Values)
        {
            var model = new DestinationModel(destination.Model.Config with { Metadata = new Dictionary<string, string> { ["Weight"] = "7" } });
            typeof(DestinationState).GetProperty(nameof(DestinationState.Model))!.SetValue(destination, model);
        }

        _updater.UpdateAllDestinations(_cluster);
        monitor.OnClusterChanged(_cluster);
        var from = _time.GetUtcNow();
        Step(2 * Interval);

        Assert.Equal(rebuilds, monitor.TargetRebuilds);
        var sends = SendsSince(from + TimeSpan.FromTicks(1));
        Assert.Equal(20, sends.Count);
        Assert.Equal(Ids(), sends.Select(s => s.Destination).Distinct().Order());
        foreach (var group in SendsSince(_time.Start + TimeSpan.FromTicks(1)).GroupBy(s => s.Destination))
        {
            Assert.Single(group.Select(s => s.At.UtcTicks % Interval.Ticks).Distinct());
        }
    }

    [Fact]
    public async Task IntervalChangedByAReload_EachDestinationOncePerNewInterval()
    {
        using var monitor = await StartedAsync(maxConcurrent: 3);
        Step(2 * Interval);

        var shorter = TimeSpan.FromSeconds(4);
        var config = _cluster.Model.Config with
        {
            HealthCheck = new HealthCheckConfig { Active = new ActiveHealthCheckConfig { Enabled = true, Interval = shorter, Timeout = TimeSpan.FromSeconds(1) } },
        };
        // As YARP's reload does: a new model on the same cluster state.
        typeof(ClusterState).GetProperty(nameof(ClusterState.Model))!.SetValue(_cluster, new ClusterModel(config, _cluster.Model.HttpClient));
        monitor.OnClusterChanged(_cluster);
        var from = _time.GetUtcNow();
        Step(3 * shorter);

        var sends = SendsSince(from + shorter + TimeSpan.FromTicks(1));
        Assert.Equal(20, sends.Count);
        foreach (var group in sends.GroupBy(s => s.Destination))
        {
            var times = group.Select(s => s.At).Order().ToList();
            Assert.Equal(2, times.Count);
            Assert.Equal(shorter, times[1] - times[0]);
        }
    }

    [Fact]
    public async Task ClusterRemoved_NoMoreProbes()
    {
        using var monitor = await StartedAsync(maxConcurrent: 3);
        monitor.OnClusterRemoved(_cluster);
        var before = _backend.Sends.Count;

        Step(2 * Interval);

        Assert.Equal(before, _backend.Sends.Count);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("10001")]
    public void MaxConcurrentProbes_OutOfRange_IsRejectedNamingTheKey(string value)
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Balancer:ActiveHealthChecks:MaxConcurrentProbes"] = value,
            ["ReverseProxy:Clusters:c:Destinations:A:Address"] = "http://127.0.0.1:5001/",
        }).Build();

        var error = Assert.Single(Balancer.Configuration.ConfigValidator.Validate(config));
        Assert.StartsWith("Balancer:ActiveHealthChecks:MaxConcurrentProbes: ", error, StringComparison.Ordinal);
        Assert.Contains(value, error, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        _services.Dispose();
        _backend.ReleaseAll();
    }

    private static IEnumerable<string> Ids() => Enumerable.Range(0, 10).Select(i => $"d{i}").Order();

    private async Task<SpreadHealthMonitor> StartedAsync(int maxConcurrent)
    {
        var monitor = Monitor(maxConcurrent);
        monitor.OnClusterAdded(_cluster);
        await monitor.CheckHealthAsync([_cluster]).WaitAsync(Deadline);
        Assert.True(monitor.InitialProbeCompleted);
        Assert.Equal(10, _backend.Sends.Count);
        return monitor;
    }

    private SpreadHealthMonitor Monitor(int maxConcurrent) => new(
        Options.Create(new ActiveHealthCheckMonitorOptions()),
        [_policy],
        new Factory(),
        _time,
        new ActiveHealthCheckOptions { MaxConcurrentProbes = maxConcurrent },
        NullLogger<SpreadHealthMonitor>.Instance);

    /// <summary>Moves fake time on in 1 ms steps, so every probe starts at its moment and completes before the next step.</summary>
    private void Step(TimeSpan span)
    {
        for (var t = TimeSpan.Zero; t < span; t += TimeSpan.FromMilliseconds(1))
        {
            _time.Advance(TimeSpan.FromMilliseconds(1));
        }
    }

    private List<DateTimeOffset> HangingSends() =>
        [.. _backend.Sends.Where(s => s.Destination == "d4" && s.At > _time.Start).Select(s => s.At).Order()];

    /// <summary>Moves fake time on until a scheduled probe of the destination is sent (within 1.5 intervals of the first round).</summary>
    private DateTimeOffset StepUntilSent(string destination)
    {
        for (var t = TimeSpan.Zero; t < 2 * Interval; t += TimeSpan.FromMilliseconds(1))
        {
            _time.Advance(TimeSpan.FromMilliseconds(1));
            foreach (var send in _backend.Sends)
            {
                if (send.Destination == destination && send.At > _time.Start)
                {
                    return send.At;
                }
            }
        }

        throw new Xunit.Sdk.XunitException($"{destination} not probed within two intervals");
    }

    private List<(string Destination, DateTimeOffset At)> SendsSince(DateTimeOffset from) =>
        [.. _backend.Sends.Where(s => s.At >= from)];

    private void Add(string id) =>
        _cluster.Destinations.TryAdd(id, new DestinationState(id, new DestinationModel(new DestinationConfig { Address = $"http://{id}.test/" })));

    private sealed class Factory : IProbingRequestFactory
    {
        public HttpRequestMessage CreateRequest(ClusterModel cluster, DestinationModel destination) =>
            new(HttpMethod.Get, destination.Config.Address + "health");
    }

    private sealed class RecordingPolicy : IActiveHealthCheckPolicy
    {
        public string Name => "ConsecutiveFailures";

        public ConcurrentQueue<(string Destination, bool Success, Exception? Exception)> Results { get; } = new();

        public void ProbingCompleted(ClusterState cluster, IReadOnlyList<DestinationProbingResult> probingResults)
        {
            foreach (var result in probingResults)
            {
                Results.Enqueue((result.Destination.DestinationId, result.Response?.IsSuccessStatusCode == true, result.Exception));
            }
        }
    }

    /// <summary>
    /// The destinations' side: answers 200 at once, or holds every probe while <see cref="Hold"/> is set, or
    /// never answers the destination named in <see cref="Hang"/> (until the probe's timeout cancels it).
    /// Records each probe's destination and start (fake time), and the most probes out at once.
    /// </summary>
    private sealed class Backend(TimeProvider time) : HttpMessageHandler
    {
        private readonly ConcurrentQueue<TaskCompletionSource> _held = new();
        private int _inFlight;
        private int _maxInFlight;

        public volatile bool Hold;
        public volatile string? Hang;

        public ConcurrentQueue<(string Destination, DateTimeOffset At)> Sends { get; } = new();

        public int Started => Sends.Count;

        public int MaxInFlight => Volatile.Read(ref _maxInFlight);

        public void ReleaseOne()
        {
            if (_held.TryDequeue(out var held))
            {
                held.TrySetResult();
            }
        }

        public void ReleaseAll()
        {
            while (_held.TryDequeue(out var held))
            {
                held.TrySetResult();
            }
        }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var destination = request.RequestUri!.Host.Split('.')[0];
            var inFlight = Interlocked.Increment(ref _inFlight);
            InterlockedMax(ref _maxInFlight, inFlight);
            // Held before it is counted as sent: a test that saw it sent can release it.
            var held = Hold ? new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) : null;
            if (held is not null)
            {
                _held.Enqueue(held);
            }

            Sends.Enqueue((destination, time.GetUtcNow()));
            try
            {
                if (destination == Hang)
                {
                    await Task.Delay(Timeout.Infinite, cancellationToken);
                }

                if (held is not null)
                {
                    await held.Task.WaitAsync(cancellationToken);
                }

                return new HttpResponseMessage(HttpStatusCode.OK) { RequestMessage = request };
            }
            finally
            {
                Interlocked.Decrement(ref _inFlight);
            }
        }

        private static void InterlockedMax(ref int target, int value)
        {
            int current;
            while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
            {
            }
        }
    }
}
