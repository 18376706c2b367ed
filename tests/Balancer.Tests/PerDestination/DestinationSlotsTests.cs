using System.Reflection;
using System.Runtime.CompilerServices;
using Balancer.Health;
using Balancer.PerDestination;
using Balancer.Tests.Health;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Tests.PerDestination;

/// <summary>
/// Whatever the features keep per destination is in one slot per destination, behind one weak table: at most one
/// dependent handle per destination for every gen0 collection to scan, and a destination removed by a reload leaves
/// nothing behind.
/// </summary>
[Collection(IntegrationCollection.Name)]
public sealed class DestinationSlotsTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Fact]
    [Trait("Category", "Unit")]
    public void Balancer_HasOneWeakTableKeyedByDestination_TheSlots()
    {
        var keyedByDestination = typeof(DestinationSlots).Assembly.GetTypes()
            .SelectMany(type => type.GetFields(BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Where(field => field.FieldType.IsGenericType
                && field.FieldType.GetGenericTypeDefinition() == typeof(ConditionalWeakTable<,>)
                && field.FieldType.GetGenericArguments()[0] is var key
                && (key == typeof(DestinationState) || key == typeof(DestinationModel)))
            .Select(field => $"{field.DeclaringType!.Name}.{field.Name}")
            .ToList();

        Assert.Equal(["DestinationSlots._slots"], keyedByDestination);
    }

    [Fact]
    [Trait("Category", "Unit")]
    public void Slot_HasRoomForEveryFeaturesPart_AndTheTestsOwn()
    {
        var parts = typeof(DestinationSlots).Assembly.GetTypes()
            .SelectMany(type => type.GetFields(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Where(field => field.FieldType.IsGenericType && field.FieldType.GetGenericTypeDefinition() == typeof(SlotPart<>))
            .Select(field => $"{field.DeclaringType!.Name}.{field.Name}")
            .Order(StringComparer.Ordinal)
            .ToList();

        Assert.Equal(
            ["AttemptSpanMiddleware.EndpointPart", "ConsecutiveFailuresPolicy.CountPart", "DestinationHealthTracker.LogPart", "DestinationHealthTracker.ProbePart",
             "DownSignals.SignalPart", "ProxyMetrics.MetricsPart", "WithdrawableClient.ClientPart"],
            parts);
        // Parts are numbered across the process: the features' and this class's two must all fit.
        Assert.True(parts.Count + 2 <= SlotPart.Capacity, $"{parts.Count} parts and the tests' 2 exceed {SlotPart.Capacity}");
    }

    [Fact]
    [Trait("Category", "Unit")]
    public void Slot_PartsOfDifferentFeatures_KeptApart_FirstMadeWins()
    {
        var slots = new DestinationSlots();
        var destination = new DestinationState("a");
        var slot = slots.Of(destination);

        Assert.Same(slot, slots.Of(destination));
        Assert.Null(slots.Find(new DestinationState("b")));
        Assert.Null(slot.Get(Parts.First));
        var first = slot.GetOrAdd(Parts.First, "one", static text => new List<string> { text });
        Assert.Same(first, slot.GetOrAdd(Parts.First, "two", static text => new List<string> { text }));
        Assert.Equal(["one"], first);
        Assert.Null(slot.Get(Parts.Second));
        slot.Set(Parts.Second, new List<string> { "other" });
        Assert.Equal(["other"], slot.Get(Parts.Second));
        Assert.Same(first, slot.Get(Parts.First));
        Assert.Equal(1, slots.Count());
        GC.KeepAlive(destination);
    }

    [Fact]
    public async Task Reload_RemovesDestination_ItsSlotCollected_OneSlotPerDestinationMeanwhile()
    {
        await using var lb = await BalancerFixture.StartAsync("RoundRobin", HealthTestConfig.ActiveAndPassive());
        await HealthTestConfig.WaitAllUpAsync(lb);
        // Requests (metrics, withdrawable clients, Down signals), probes and their logs, a scrape: every feature's part.
        await lb.CountBackendsAsync(30);
        await lb.MetricsAsync();
        await lb.StatusAsync();
        var slots = lb.App.Services.GetRequiredService<DestinationSlots>();
        Assert.Equal(3, slots.Count());
        // YARP's ConsecutiveFailures policy, with a weak table of its own, is replaced by the one counting in the slots.
        Assert.Equal(
            [typeof(ConsecutiveFailuresPolicy)],
            lb.App.Services.GetServices<IActiveHealthCheckPolicy>().Select(p => ((ProbeObservingPolicy)p).Inner.GetType()));
        var (slot, state) = WatchSlotOf(lb, "C");

        lb.WriteConfig("RoundRobin", config =>
        {
            HealthTestConfig.ActiveAndPassive()(config);
            HealthTestConfig.Cluster(config)["Destinations"]!.AsObject().Remove("C");
        });
        await Poll.UntilAsync(async () => (await lb.StatusAsync())["clusters"]![0]!["destinations"]!.AsArray().Count == 2, Wait, "C to leave /status");
        await lb.CountBackendsAsync(10);

        await Poll.UntilAsync(
            async () =>
            {
                // A scrape forgets departed destinations; the collections find what is left unreachable.
                await lb.MetricsAsync();
                GC.Collect();
                GC.WaitForPendingFinalizers();
                GC.Collect();
                return !slot.TryGetTarget(out _) && !state.TryGetTarget(out _);
            },
            Wait,
            "C's destination state and slot to be collected");
        Assert.Equal(2, slots.Count());
    }

    // Not inlined, so that no local of the test roots the state or the slot.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static (WeakReference<DestinationSlot> Slot, WeakReference<DestinationState> State) WatchSlotOf(BalancerFixture lb, string id)
    {
        Assert.True(lb.App.Services.GetRequiredService<IProxyStateLookup>().TryGetCluster("backends", out var cluster));
        var state = cluster.Destinations[id];
        var slot = lb.App.Services.GetRequiredService<DestinationSlots>().Find(state);
        Assert.NotNull(slot);
        return (new WeakReference<DestinationSlot>(slot), new WeakReference<DestinationState>(state));
    }

    private static class Parts
    {
        public static readonly SlotPart<List<string>> First = new();
        public static readonly SlotPart<List<string>> Second = new();
    }
}
