using System.Net;
using Balancer.LoadBalancing;
using Balancer.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Balancer.Tests.LoadBalancing;

[Trait("Category", "Unit")]
public sealed class MaglevTableTests(ITestOutputHelper output)
{
    [Fact]
    public void SameIdsAndWeights_InAnyOrder_BuildTheSameMapping()
    {
        var (ids, weights) = Cluster(500, seed: 31);
        var shuffled = Enumerable.Range(0, ids.Length).OrderBy(i => RendezvousHash.Mix((ulong)i)).ToArray();
        var first = Table(ids, weights);
        var again = Table(ids, weights);
        var reordered = Table([.. shuffled.Select(i => ids[i])], [.. shuffled.Select(i => weights[i])]);

        foreach (var key in Keys(100_000, seed: 32))
        {
            var owner = ids[first.Lookup(key)];
            Assert.Equal(owner, ids[again.Lookup(key)]);
            Assert.Equal(owner, ids[shuffled[reordered.Lookup(key)]]);
        }
    }

    [Fact]
    public void Weights1To1000_1000Destinations_EachOwnsItsWeightsShareOfSlots_WithinTwoSlots()
    {
        var (ids, weights) = Cluster(1000, seed: 33);
        var table = Table(ids, weights);
        var slots = table.SlotCounts(ids.Length);
        double total = weights.Sum();

        var worst = Enumerable.Range(0, ids.Length).Max(i => Math.Abs(slots[i] - table.Size * weights[i] / total));
        output.WriteLine($"table of {table.Size} slots; worst destination {worst:0.00} slots from its share");
        Assert.True(worst <= 2, $"a destination was {worst:0.00} slots from its share");
        Assert.All(slots, count => Assert.True(count >= 1));
    }

    [Fact]
    public void TenEqualDestinations_1MillionAddresses_EachGets10PercentWithinHalfAPoint()
    {
        var ids = Enumerable.Range(0, 10).Select(i => $"d{i}").ToArray();
        var table = Table(ids, [.. ids.Select(_ => 1)]);
        var counts = new int[ids.Length];
        foreach (var key in Keys(1_000_000, seed: 34))
        {
            counts[table.Lookup(key)]++;
        }

        Assert.All(counts, count => Assert.InRange(count, 95_000, 105_000));
    }

    [Theory]
    [InlineData(1000, false)]
    [InlineData(1000, true)]
    [InlineData(10_000, true)]
    public void OneDestinationLeaves_ItsClientsMove_AndFewOthers(int count, bool randomWeights)
    {
        var (ids, weights) = Cluster(count, seed: 35);
        if (!randomWeights)
        {
            Array.Fill(weights, 1);
        }

        var gone = count / 2;
        var before = Table(ids, weights);
        var after = Table([.. ids.Where((_, i) => i != gone)], [.. weights.Where((_, i) => i != gone)]);
        var keys = Keys(1_000_000, seed: 36);
        int owned = 0, others = 0;
        foreach (var key in keys)
        {
            var was = before.Lookup(key);
            var now = after.Lookup(key);
            now = now >= gone ? now + 1 : now;
            if (was == gone)
            {
                owned++;
            }
            else if (now != was)
            {
                others++;
            }
        }

        var share = 100.0 * owned / keys.Length;
        var extra = 100.0 * others / keys.Length;
        output.WriteLine($"{count} destinations (weights {(randomWeights ? "1-1000" : "equal")}), one leaves: its {share:0.000}% of clients move, and {extra:0.000}% of the others'");
        // Rendezvous would move exactly its share. Maglev moves a few times that from other destinations, as slots
        // the leaving one held are claimed by turns that shift along (measured: 0.46% of all clients at 1,000
        // destinations, 0.13% at 10,000); the bound is 16/N of all clients.
        Assert.True(owned > 0);
        Assert.True(others <= keys.Length * 16L / count, $"{others} other clients moved for {owned} of the leaving destination's");
    }

    [Fact]
    public void Build_10000Destinations_Weights1To1000_BoundedByTableSize_NotByWeights()
    {
        var (ids, weights) = Cluster(10_000, seed: 37);
        var hashes = ids.Select(RendezvousHash.HashId).ToArray();
        MaglevTable table = null!;

        var allocated = Allocations.Fewest(() => table = new MaglevTable(hashes, weights), rounds: 2);
        var light = new MaglevTable(hashes, [.. weights.Select(_ => 1)]);

        output.WriteLine($"{table.Size} slots: {allocated:N0} bytes allocated, {table.BuildSteps:N0} steps (equal weights: {light.BuildSteps:N0})");
        Assert.Equal(524_309, table.Size);
        // The slots (4 bytes each) plus a few arrays of one entry per destination.
        Assert.InRange(allocated, 4L * table.Size, 4L * table.Size + 100L * ids.Length);
        // Filling m slots from random permutations takes about m ln m probes; the turns add log N comparisons a slot.
        var bound = (long)(table.Size * (Math.Log(table.Size) + 2 * Math.Log2(ids.Length)));
        Assert.InRange(table.BuildSteps, table.Size, bound);
        Assert.InRange(light.BuildSteps, table.Size, bound);
    }

    [Fact]
    public void LookupWalkingPastTheUnavailable_AllAvailable_IsTheSlotOwner_OtherwiseAnAvailableOneOrNoneWithinTheBound()
    {
        var (ids, weights) = Cluster(1000, seed: 40);
        var table = Table(ids, weights);
        var everyone = new ulong[(ids.Length + 63) / 64];
        Array.Fill(everyone, ulong.MaxValue);
        var third = new ulong[everyone.Length];
        for (var i = 0; i < ids.Length; i += 3)
        {
            third[i >> 6] |= 1UL << i;
        }

        int kept = 0, walked = 0, gaveUp = 0;
        foreach (var key in Keys(100_000, seed: 41))
        {
            var owner = table.Lookup(key);
            Assert.Equal(owner, table.Lookup(key, everyone, maxProbes: 1));
            var found = table.Lookup(key, third, maxProbes: 8);
            if (owner % 3 == 0)
            {
                Assert.Equal(owner, found);
                kept++;
            }
            else if (found >= 0)
            {
                Assert.Equal(0, found % 3);
                // A longer bound finds the same one: the walk is the key's own, whatever the bound.
                Assert.Equal(found, table.Lookup(key, third, maxProbes: 64));
                walked++;
            }
            else
            {
                Assert.Equal(-1, table.Lookup(key, third, maxProbes: 1));
                gaveUp++;
            }
        }

        output.WriteLine($"a third available: {kept} keys on their own slot's owner, {walked} walked to another, {gaveUp} found none within 8 slots");
        Assert.True(kept > 0 && walked > 0 && gaveUp > 0);
    }

    [Fact]
    public void Lookup_AllocatesNothing()
    {
        var (ids, weights) = Cluster(200, seed: 38);
        var table = Table(ids, weights);
        var keys = Keys(10_000, seed: 39);
        var sum = 0L;
        var allocated = Allocations.Fewest(() =>
        {
            foreach (var key in keys)
            {
                sum += table.Lookup(key);
            }
        });

        Assert.Equal(0, allocated);
        Assert.True(sum > 0);
    }

    private static MaglevTable Table(string[] ids, int[] weights) => new(ids.Select(RendezvousHash.HashId).ToArray(), weights);

    private static (string[] Ids, int[] Weights) Cluster(int count, int seed)
    {
        var random = new Random(seed);
        return ([.. Enumerable.Range(0, count).Select(i => $"destination-{i}")], [.. Enumerable.Range(0, count).Select(_ => random.Next(1, 1001))]);
    }

    private static ulong[] Keys(int count, int seed)
    {
        var random = new Random(seed);
        var keys = new ulong[count];
        var bytes = new byte[4];
        for (var i = 0; i < count; i++)
        {
            random.NextBytes(bytes);
            keys[i] = RendezvousHash.HashAddress(new IPAddress(bytes));
        }

        return keys;
    }
}
