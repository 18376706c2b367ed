using System.Net;
using Balancer.LoadBalancing;
using Balancer.Runtime;
using Balancer.Tests.Infrastructure;
using Xunit.Abstractions;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace Balancer.Tests.LoadBalancing;

/// <summary>
/// IpHash over a large cluster: one table of the configured destinations, built on a reload or weight change only; a
/// health or admin change moves exactly the clients of the destination that left, through the walk past it.
/// </summary>
[Trait("Category", "Unit")]
public sealed class IpHashConfiguredTableTests(ITestOutputHelper output)
{
    [Fact]
    public void TwentyHealthAndAdminChanges_10000Destinations_Weights1To1000_BuildNoTable_AndAllocateOneBitPerDestination()
    {
        var (policy, clusters) = Policy(out var pending);
        var all = Destinations.Many(10_000, seed: 70);
        var cluster = Destinations.Cluster(all);
        var context = Destinations.Context(5);
        policy.PickDestination(context, cluster, all);
        Assert.Equal(1, clusters.TableBuilds(cluster));

        // Ten destinations out and back in turn (Down and Up, drain and enable: either way YARP hands over a new
        // list), prepared on the changing thread as the runtime API and the health tracker do; each pair the same work.
        var lists = Enumerable.Range(0, 10).Select(r => all.Where((_, i) => i != r * 997).ToArray()).ToArray();
        var changes = 0;
        var bytes = Allocations.Fewest(() =>
        {
            var without = lists[changes++];
            Destinations.Available(cluster, without);
            ((IPreparingPolicy)policy).Prepare(cluster);
            Assert.NotSame(all[(changes - 1) * 997], policy.PickDestination(context, cluster, without));
            Destinations.Available(cluster, all);
            ((IPreparingPolicy)policy).Prepare(cluster);
            policy.PickDestination(context, cluster, all);
        }, rounds: 10);

        Assert.Equal(10, changes);
        Assert.Equal(1, clusters.TableBuilds(cluster));
        Assert.Empty(pending);
        // Per change: the availability (one bit per configured destination) and a few small objects, the snapshot among
        // them (the table holds the hashes and weights); a table is 4 bytes a slot, 2 MB here.
        var perChange = bytes / 2;
        output.WriteLine($"{perChange:N0} bytes per change at {all.Length:N0} destinations; the table has {clusters.CachedTable(cluster)!.Table.Size:N0} slots");
        Assert.InRange(perChange, all.Length / 8, all.Length / 8 + 512);
    }

    [Fact]
    public void DownThenUp_WithSlowStartOverrides_10000Destinations_ChecksTheWeights_ButBuildsNoTable()
    {
        var overrides = new RuntimeOverrides(null);
        var (policy, clusters) = Policy(out _, new EffectiveWeights(overrides, TimeProvider.System));
        clusters.RunBuild = build => build();
        var all = Destinations.Many(10_000, seed: 71);
        var cluster = Destinations.Cluster(all);
        policy.PickDestination(Destinations.Context(1), cluster, all);
        var table = clusters.CachedTable(cluster);

        // A ramp starting (as a destination comes back with slow start) moves the overrides' generation, not a weight IpHash uses.
        var generation = overrides.Generation;
        overrides.StartRamp("c", all[3].DestinationId, TimeProvider.System.GetTimestamp());
        Assert.NotEqual(generation, overrides.Generation);
        Assert.False(table!.Describes(cluster.DestinationsState.AllDestinations, overrides.Generation));
        policy.PickDestination(Destinations.Context(1), cluster, all);

        Assert.Equal(1, clusters.TableBuilds(cluster));
        Assert.Same(table, clusters.CachedTable(cluster));
        Assert.True(table.Describes(cluster.DestinationsState.AllDestinations, overrides.Generation));
    }

    [Theory]
    [InlineData(1000)]
    [InlineData(10_000)]
    public void OneDestinationLeaves_OnlyItsClientsMove_SpreadOverTheOthers_NothingMovesLater_AndTheyComeBackExactlyWhenItReturns(int count)
    {
        var (policy, clusters) = Policy(out var pending);
        var all = Destinations.Many(count, seed: 72);
        var cluster = Destinations.Cluster(all);
        var clients = Destinations.Clients(100_000, seed: 73);
        DestinationState[] Picks(IReadOnlyList<DestinationState> available)
        {
            Destinations.Available(cluster, available);
            return [.. clients.Select(c => policy.PickDestination(Destinations.Context(c), cluster, available)!)];
        }

        var original = Picks(all);
        // Drained or down, it leaves the available list the same way (as RuntimeAvailableDestinations makes it): the busiest.
        var busiest = original.GroupBy(d => d).MaxBy(g => g.Count())!.Key;
        DestinationState[] remaining = [.. all.Where(d => d != busiest)];
        var without = Picks(remaining);
        // The table is of the configured destinations, which this does not change: nothing to build, nothing moves later.
        Assert.Empty(pending);
        Assert.True(without.AsSpan().SequenceEqual(Picks(remaining)), "a client moved after the change");
        var restored = Picks(all);

        var own = Enumerable.Range(0, clients.Length).Where(i => original[i] == busiest).ToArray();
        Assert.All(Enumerable.Range(0, clients.Length).Where(i => original[i] != busiest), i => Assert.Same(original[i], without[i]));
        Assert.All(own, i => Assert.NotSame(busiest, without[i]));
        var receivers = own.GroupBy(i => without[i]).Select(g => g.Count()).ToArray();
        output.WriteLine($"{count} destinations: the busiest had {own.Length} of {clients.Length} clients; they went to {receivers.Length} others, at most {receivers.Max()} to one");
        // Each client walks its own way past the slots: they land on many destinations, never all on a few neighbours.
        Assert.True(receivers.Length >= own.Length / 2, $"{own.Length} clients went to only {receivers.Length} destinations");
        Assert.True(receivers.Max() <= 8, $"one destination took {receivers.Max()} of them");
        // Compared by reference: a DestinationState is itself a one-item list, which xunit would compare as one.
        Assert.True(original.AsSpan().SequenceEqual(restored), "a client did not come back to its destination");
        Assert.Equal(1, clusters.TableBuilds(cluster));
        Assert.Empty(pending);
    }

    [Fact]
    public void HalfTheCluster_Down_10000Destinations_TheRestSplitByWeight_EveryBandWithinThreePercentOfItsShare_TheLightestWithinTen()
    {
        var (policy, clusters) = Policy(out _);
        var all = Destinations.Many(10_000, seed: 74);
        var cluster = Destinations.Cluster(all);
        policy.PickDestination(Destinations.Context(1), cluster, all);
        DestinationState[] up = [.. all.Where((_, i) => i % 2 == 0)];
        Destinations.Available(cluster, up);
        var counts = new Dictionary<DestinationState, int>(ReferenceEqualityComparer.Instance);
        const int Keys = 2_000_000;
        var random = new Random(75);
        var context = Destinations.Context(0);
        for (var i = 0; i < Keys; i++)
        {
            context.Connection.RemoteIpAddress = new IPAddress((uint)random.Next() ^ ((uint)random.Next() << 1));
            var picked = policy.PickDestination(context, cluster, up)!;
            counts[picked] = counts.GetValueOrDefault(picked) + 1;
        }

        var upSet = up.ToHashSet();
        Assert.Equal(0, counts.Keys.Count(d => !upSet.Contains(d)));
        // Ten bands of weight (1-100, ..., 901-1000): each band's share of the clients against its share of the weight.
        double total = up.Sum(Destinations.Weight);
        double worst = 0, lightest = 0;
        foreach (var band in up.GroupBy(d => (Destinations.Weight(d) - 1) / 100))
        {
            var expected = band.Sum(Destinations.Weight) / total;
            var actual = band.Sum(d => counts.GetValueOrDefault(d)) / (double)Keys;
            output.WriteLine($"weights {band.Key * 100 + 1}-{band.Key * 100 + 100}: {100 * expected:0.000}% of the weight, {100 * actual:0.000}% of the clients");
            if (band.Key == 0)
            {
                lightest = Math.Abs(actual / expected - 1);
            }
            else
            {
                worst = Math.Max(worst, Math.Abs(actual / expected - 1));
            }
        }

        // Total variation distance from the weights over single destinations, noise of 200 clients each included.
        var distance = up.Sum(d => Math.Abs(counts.GetValueOrDefault(d) / (double)Keys - Destinations.Weight(d) / total)) / 2;
        output.WriteLine($"worst band above 100 {100 * worst:0.00}% from its share, the lightest {100 * lightest:0.00}%; total variation distance {100 * distance:0.00}%");
        Assert.True(worst <= 0.03, $"a band was {100 * worst:0.00}% from its share");
        // Every destination owns at least one slot, so the lightest get more than their weight's share, all up or not.
        Assert.True(lightest <= 0.10, $"the lightest band was {100 * lightest:0.00}% from its share");
        Assert.True(distance <= 0.03, $"total variation distance {100 * distance:0.00}%");
        Assert.Equal(1, clusters.TableBuilds(cluster));
    }

    [Fact]
    public void MostOfTheClusterOut_WalkGivesUpAfterItsBound_ThoseClientsGetTheExactRendezvousPick_AndReturnsRestoreThem()
    {
        var (policy, clusters) = Policy(out _);
        var all = Destinations.Many(10_000, seed: 76);
        var cluster = Destinations.Cluster(all);
        var clients = Destinations.Clients(20_000, seed: 77);
        string[] Picks(IReadOnlyList<DestinationState> available)
        {
            Destinations.Available(cluster, available);
            return [.. clients.Select(c => policy.PickDestination(Destinations.Context(c), cluster, available)!.DestinationId)];
        }

        var original = Picks(all);
        // 40 left of 10,000: a walk of 64 slots finds one of them for about a quarter of the clients.
        DestinationState[] few = [.. all.Where((_, i) => i % 250 == 0)];
        var picks = Picks(few);
        var table = clusters.CachedTable(cluster)!;
        var availability = clusters.CachedAvailability(cluster)!;
        Assert.Equal(few.Length, availability.Count);
        var hashes = few.Select(d => RendezvousHash.HashId(d.DestinationId)).ToArray();
        var weights = few.Select(Destinations.Weight).ToArray();
        int walked = 0, fellBack = 0;
        for (var i = 0; i < clients.Length; i++)
        {
            var key = RendezvousHash.HashAddress(new IPAddress(clients[i]));
            var index = table.Lookup(key, availability);
            var expected = index >= 0 ? table.Destinations[index] : few[RendezvousHash.Pick(key, hashes, weights)];
            Assert.Equal(expected.DestinationId, picks[i]);
            walked += index >= 0 ? 1 : 0;
            fellBack += index < 0 ? 1 : 0;
            // A walk that ends is never longer than the bound: with a bound of one slot only clients on their own slot's owner stay.
            var first = table.Table.Lookup(key, availability.Bits, maxProbes: 1);
            Assert.Equal(Array.IndexOf(few, table.Destinations[table.Table.Lookup(key)]) >= 0 ? table.Table.Lookup(key) : -1, first);
        }

        output.WriteLine($"{few.Length} of {all.Length} available: {walked} clients found one within {ConfiguredTable.MaxWalk} slots, {fellBack} fell back to rendezvous hashing");
        Assert.InRange(walked, clients.Length / 10, clients.Length / 2);
        Assert.InRange(fellBack, clients.Length / 2, clients.Length * 9 / 10);
        Assert.Equal(original, Picks(all));
        Assert.Equal(1, clusters.TableBuilds(cluster));
    }

    [Fact]
    public void Reload_ChangingWeights_BuildsOneTable_ChangingOnlyAddresses_BuildsNone_AndAWeightOverrideBuildsOne()
    {
        var overrides = new RuntimeOverrides(null);
        var (policy, clusters) = Policy(out var pending, new EffectiveWeights(overrides, TimeProvider.System));
        var all = Destinations.Many(1000, seed: 78);
        var cluster = Destinations.Cluster(all);
        var context = Destinations.Context(3);
        policy.PickDestination(context, cluster, all);
        Assert.Equal(1, clusters.TableBuilds(cluster));

        // New models with other addresses, the same ids and weights: YARP's lists are new, the table's slots are kept.
        var moved = Destinations.Make([.. all.Select(d => (d.DestinationId, Destinations.Weight(d)))]);
        Destinations.Reconfigured(cluster, moved);
        policy.PickDestination(context, cluster, moved);
        Assert.Single(pending);
        RunAll(pending);
        Assert.Equal(1, clusters.TableBuilds(cluster));
        Assert.Same(moved, clusters.CachedTable(cluster)!.List);

        // A reload that changed weights: one table, built off the request path, however many requests met it.
        var random = new Random(79);
        var reweighed = Destinations.Make([.. all.Select(d => (d.DestinationId, random.Next(1, 1001)))]);
        Destinations.Reconfigured(cluster, reweighed);
        for (var i = 0; i < 100; i++)
        {
            policy.PickDestination(Destinations.Context((uint)i), cluster, reweighed);
        }

        Assert.Single(pending);
        RunAll(pending);
        Assert.Equal(2, clusters.TableBuilds(cluster));
        Assert.Equal(reweighed.Select(Destinations.Weight).Order(), clusters.CachedTable(cluster)!.Weights.Order());

        overrides.Update("c", reweighed[10].DestinationId, o => new DestinationOverride(AdminMode.Active, 999, DateTimeOffset.UnixEpoch, "test"));
        policy.PickDestination(context, cluster, reweighed);
        RunAll(pending);
        Assert.Equal(3, clusters.TableBuilds(cluster));
        var table = clusters.CachedTable(cluster)!;
        Assert.Equal(999, table.Weights[Array.IndexOf(table.Destinations, reweighed[10])]);
    }

    [Fact]
    public void Reload_ReplacingEveryDestination_UntilItsTableIsBuilt_ClientsGetTheExactRendezvousPick_ThenTheNewTables()
    {
        var (policy, clusters) = Policy(out var pending);
        var cluster = Destinations.Cluster(Destinations.Many(200, seed: 82));
        policy.PickDestination(Destinations.Context(1), cluster, cluster.DestinationsState.AvailableDestinations);
        var replaced = Destinations.Many(200, seed: 83);
        Destinations.Reconfigured(cluster, replaced);
        var hashes = replaced.Select(d => RendezvousHash.HashId(d.DestinationId)).ToArray();
        var weights = replaced.Select(Destinations.Weight).ToArray();
        var clients = Destinations.Clients(2000, seed: 84);

        // The old table holds none of the new destinations: rendezvous hashing over them, as a small cluster would.
        foreach (var client in clients)
        {
            var key = RendezvousHash.HashAddress(new IPAddress(client));
            Assert.Same(replaced[RendezvousHash.Pick(key, hashes, weights)], policy.PickDestination(Destinations.Context(client), cluster, replaced));
        }

        Assert.Single(pending);
        RunAll(pending);
        var picker = MaglevTable.Picker(hashes, weights);
        foreach (var client in clients)
        {
            Assert.Same(replaced[picker(RendezvousHash.HashAddress(new IPAddress(client)))], policy.PickDestination(Destinations.Context(client), cluster, replaced));
        }

        Assert.Equal(2, clusters.TableBuilds(cluster));
    }

    [Fact]
    public void ConfigPreviewPicker_IsWhatThePolicyPicks_WithEveryDestinationAvailable()
    {
        var (policy, _) = Policy(out _);
        var all = Destinations.Many(300, seed: 80);
        var cluster = Destinations.Cluster(all);
        var picker = MaglevTable.Picker([.. all.Select(d => RendezvousHash.HashId(d.DestinationId))], [.. all.Select(Destinations.Weight)]);

        foreach (var client in Destinations.Clients(20_000, seed: 81))
        {
            var key = RendezvousHash.HashAddress(new IPAddress(client));
            Assert.Same(all[picker(key)], policy.PickDestination(Destinations.Context(client), cluster, all));
        }
    }

    private static (ILoadBalancingPolicy Policy, ClusterPolicyState.Table Clusters) Policy(out List<Action> pending, EffectiveWeights? weights = null)
    {
        var (policy, clusters) = Destinations.Policy("IpHash", weights);
        var builds = new List<Action>();
        clusters.RunBuild = builds.Add;
        pending = builds;
        return (policy, clusters);
    }

    private static void RunAll(List<Action> pending)
    {
        var builds = pending.ToArray();
        pending.Clear();
        foreach (var build in builds)
        {
            build();
        }
    }
}
