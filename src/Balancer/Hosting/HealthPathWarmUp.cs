using Balancer.Health;
using Balancer.LoadBalancing;
using Balancer.PerDestination;
using Balancer.Resilience;
using Balancer.Runtime;
using Balancer.Telemetry;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Hosting;

/// <summary>
/// Takes a destination Down and Up again once at start-up, before the listeners take traffic, through the health
/// tracker's own code on a tracker, cluster and destination of its own that nothing else sees: so that the first real
/// destination to go Down, on the thread judging its probe, does not compile that code (the transition's record and
/// log line, the Down signal, the announced change and the available list's update, then slow start's ramp on the way
/// Up: about twenty methods, 1.3 and 1.6 ms of JIT at the first Down and Up of a balancer of 10,000 destinations on a
/// loaded machine, docs/benchmarks.md) while every request waits for the proxy's one CPU.
/// </summary>
/// <remarks>
/// Nothing of it is visible: its metrics registry, log, runtime overrides, destination slots and announcements are
/// its own, its cluster is in no proxy state, and everything it made is garbage once it returns.
/// </remarks>
internal sealed class HealthPathWarmUp : IHostedService
{
    private const string ClusterId = "health-path-warm-up";
    private const string DestinationId = "warm-up";

    /// <summary>What the run at start-up went through; null before it.</summary>
    public Report? Ran { get; private set; }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        // A Native AOT build compiled everything before it ran.
        if (System.Runtime.CompilerServices.RuntimeFeature.IsDynamicCodeCompiled)
        {
            Ran = Run();
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>One destination of a cluster of two made Up by a good probe, Down by a failed one and Up again.</summary>
    internal static Report Run()
    {
        var time = TimeProvider.System;
        var overrides = new RuntimeOverrides(null);
        var changes = new AvailabilityChanges();
        var slots = new DestinationSlots();
        var log = new FormattingLogger<DestinationHealthTracker>();
        var available = new RuntimeAvailableDestinations(new HealthyOrPanic(), overrides, changes);
        // No policy to prepare a snapshot for: a cluster's own are built as the config is applied.
        using var noServices = new ServiceCollection().BuildServiceProvider();
        var updater = new PreparingDestinationsUpdater(new Updater(available), new PolicySnapshots(noServices), changes);
        using var tracker = new DestinationHealthTracker(updater, time, new BalancerMetricsRegistry(), log, slots: slots, availability: changes);
        using var signals = new DownSignals(tracker, slots);
        _ = new SlowStartTrigger(tracker, overrides, time);
        using var client = new HttpMessageInvoker(new SocketsHttpHandler());
        var config = new ClusterConfig
        {
            ClusterId = ClusterId,
            HealthCheck = new HealthCheckConfig { Active = new ActiveHealthCheckConfig { Enabled = true } },
        };
        var cluster = new ClusterState(ClusterId, new ClusterModel(config, client));
        DestinationState[] all = [Destination(DestinationId), Destination("other")];
        cluster.DestinationsState = new ClusterDestinationsState(all, all);
        var destination = all[0];
        var nextDown = signals.NextDown(destination);

        // Up first, as every destination is once probed: only a destination that was Up counts a flap when it goes Down.
        tracker.SetActive(cluster, [new NewActiveDestinationHealth(destination, DestinationHealth.Healthy)]);
        tracker.SetActive(cluster, [new NewActiveDestinationHealth(destination, DestinationHealth.Unhealthy)]);
        var down = cluster.DestinationsState.AvailableDestinations.Count;
        var signalled = signals.NextDown(destination) != nextDown;
        tracker.SetActive(cluster, [new NewActiveDestinationHealth(destination, DestinationHealth.Healthy)]);
        var up = cluster.DestinationsState.AvailableDestinations.Count;
        // The weights a snapshot reads once the destination is ramping up again.
        var weights = new int[all.Length];
        new EffectiveWeights(overrides, time).Fill(cluster, all, weights, slowStart: true);
        return new Report(tracker.LastChange(ClusterId, DestinationId)?.To, tracker.Explain(destination).Flaps, down, signalled, up, overrides.RampStart(ClusterId, DestinationId) is not null, log.Lines, available.FullPasses);
    }

    private static DestinationState Destination(string id) =>
        new(id, new DestinationModel(new DestinationConfig { Address = "http://127.0.0.1/" }));

    /// <summary>
    /// What a run went through: the last transition and the flaps the health log counted, the available count while Down
    /// and after, the Down signal, the ramp, the log lines formatted, the available list's full computations.
    /// </summary>
    internal sealed record Report(string? LastTransition, int Flaps, int AvailableWhileDown, bool Signalled, int AvailableAfter, bool Ramping, int LogLines, int FullPasses);

    /// <summary>YARP's updater, as it calls the available-destinations policy, for a cluster of its own.</summary>
    private sealed class Updater(IAvailableDestinationsPolicy policy) : IClusterDestinationsUpdater
    {
        public void UpdateAllDestinations(ClusterState cluster) => UpdateAvailableDestinations(cluster);

        public void UpdateAvailableDestinations(ClusterState cluster)
        {
            var all = cluster.DestinationsState.AllDestinations;
            cluster.DestinationsState = new ClusterDestinationsState(all, policy.GetAvailalableDestinations(cluster.Model.Config, all));
        }
    }

    /// <summary>The name of YARP's default policy, whose rule the wrapper applies itself.</summary>
    private sealed class HealthyOrPanic : IAvailableDestinationsPolicy
    {
        public string Name => "HealthyOrPanic";

        public IReadOnlyList<DestinationState> GetAvailalableDestinations(ClusterConfig config, IReadOnlyList<DestinationState> allDestinations) => allDestinations;
    }

    /// <summary>A log that formats every message, as the console's does on the logging thread, and keeps none.</summary>
    private sealed class FormattingLogger<T> : ILogger<T>
    {
        public int Lines { get; private set; }

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            _ = formatter(state, exception);
            Lines++;
        }
    }
}
