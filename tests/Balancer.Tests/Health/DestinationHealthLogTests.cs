using Balancer.Health;

namespace Balancer.Tests.Health;

[Trait("Category", "Unit")]
public sealed class DestinationHealthLogTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Flaps_ChangesBetweenUpAndDown_OnceFirstUp_UnknownInBetweenIgnored()
    {
        var log = new DestinationHealthLog();

        // Down before it was ever Up (a slow first probe), then its first Up: bringing it up, no flap.
        log.HealthChanged("Unknown", T0);
        log.HealthChanged("Down", T0);
        log.HealthChanged("Unknown", T0.AddSeconds(1));
        log.HealthChanged("Up", T0.AddSeconds(2));
        Assert.Equal(0, log.Snapshot(T0.AddSeconds(2)).Flaps);
        // Up -> Down, and Down -> Unknown -> Up: two flaps.
        log.HealthChanged("Down", T0.AddSeconds(3));
        log.HealthChanged("Unknown", T0.AddSeconds(4));
        Assert.Equal(1, log.Snapshot(T0.AddSeconds(4)).Flaps);
        log.HealthChanged("Up", T0.AddSeconds(5));
        Assert.Equal(2, log.Snapshot(T0.AddSeconds(5)).Flaps);
    }

    [Fact]
    public void Flaps_BoundedMemory_CountStopsAtTheCap()
    {
        var log = new DestinationHealthLog();
        for (var i = 0; i <= DestinationHealthLog.FlapsKept + 500; i++)
        {
            log.HealthChanged(i % 2 == 0 ? "Up" : "Down", T0.AddMilliseconds(i));
        }

        Assert.Equal(DestinationHealthLog.FlapsKept, log.Snapshot(T0.AddSeconds(2)).Flaps);
    }

    [Theory]
    [InlineData(3)]
    [InlineData(5)]
    [InlineData(20)]
    [InlineData(37)]
    public void Probes_NewestFirst_WhileTheLogGrowsAndAfterItWraps(int added)
    {
        var log = new DestinationHealthLog();
        for (var i = 0; i < added; i++)
        {
            log.AddProbe(new ProbeRecord(T0.AddSeconds(i), ProbeRecord.Success, i, 200, null));
        }

        var kept = Math.Min(added, DestinationHealthLog.ProbesKept);
        Assert.Equal(
            Enumerable.Range(added - kept, kept).Reverse().Select(i => T0.AddSeconds(i)),
            log.Snapshot(T0).Probes.Select(p => p.Time));
    }

    [Fact]
    public void Probes_KeptCompactly_ComeBackAsRecorded_NullsIncluded()
    {
        var log = new DestinationHealthLog();
        ProbeRecord[] probes =
        [
            new(T0, ProbeRecord.Success, 0.125, 200, null),
            new(T0.AddSeconds(5), ProbeRecord.Failure, null, null, "connection_refused"),
            new(T0.AddSeconds(10), ProbeRecord.Failure, 1000.5, 503, null),
            new(T0.AddSeconds(15), ProbeRecord.Success, 0, 204, null),
        ];
        foreach (var probe in probes)
        {
            log.AddProbe(probe);
        }

        Assert.Equal(probes.Reverse(), log.Snapshot(T0).Probes);
    }

    [Fact]
    public async Task ConcurrentWritersAndReaders_EverySnapshotIsWhole_20KeptAtTheEnd()
    {
        var log = new DestinationHealthLog();
        var writers = Enumerable.Range(0, 4).Select(w => Task.Run(() =>
        {
            for (var i = 0; i < 5000; i++)
            {
                log.AddProbe(new ProbeRecord(T0.AddTicks(i), "Success", 1, 200, null));
                log.AddEvent(new PassiveEvent(T0.AddTicks(i), "Returned", $"writer {w}"));
            }
        })).ToArray();
        var snapshots = 0;
        while (!writers.All(w => w.IsCompleted))
        {
            var snapshot = log.Snapshot(T0);
            Assert.All(snapshot.Probes, Assert.NotNull);
            Assert.All(snapshot.PassiveEvents, Assert.NotNull);
            snapshots++;
        }

        await Task.WhenAll(writers);
        var last = log.Snapshot(T0);
        Assert.Equal(20, last.Probes.Count);
        Assert.Equal(20, last.PassiveEvents.Count);
        Assert.True(snapshots > 0);
    }
}
