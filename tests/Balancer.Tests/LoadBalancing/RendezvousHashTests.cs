using System.Net;
using Balancer.LoadBalancing;

namespace Balancer.Tests.LoadBalancing;

[Trait("Category", "Unit")]
public sealed class RendezvousHashTests
{
    private static readonly string[] Ids = ["A", "B", "C"];

    [Fact]
    public void IpHash_10000RandomAddresses_EachOfThreeGets33PercentWithin3()
    {
        var counts = new int[3];
        foreach (var address in RandomAddresses(10_000, seed: 1))
        {
            counts[Pick(address, Ids)]++;
        }

        foreach (var count in counts)
        {
            Assert.InRange(count, 3_000, 3_667);
        }
    }

    [Fact]
    public void IpHash_RemovingOneDestination_MovesOnlyItsOwnClients()
    {
        var addresses = RandomAddresses(10_000, seed: 2);
        var moved = 0;
        foreach (var address in addresses)
        {
            var before = Ids[Pick(address, Ids)];
            var after = new[] { "A", "C" }[Pick(address, ["A", "C"])];
            if (before != "B")
            {
                Assert.Equal(before, after);
            }
            else
            {
                moved++;
            }
        }

        Assert.True(moved > 0);
    }

    [Fact]
    public void IpHashPolicy_RemovingThenReaddingDestination_MovesOnlyItsClients_ThenRestoresOriginalMappingExactly()
    {
        // Through the policy, which caches per cluster what it derives from the available set: each step's
        // picks are checked, so a set kept from the step before would show.
        var (policy, _) = Destinations.Policy("IpHash");
        var all = Destinations.Make(("A", 1), ("B", 1), ("C", 1));
        var withoutB = new[] { all[0], all[2] };
        var cluster = Destinations.Cluster(all);
        var addresses = RandomAddresses(3_000, seed: 3);
        string[] Picks(IReadOnlyList<Yarp.ReverseProxy.Model.DestinationState> available)
        {
            Destinations.Available(cluster, available);
            return [.. addresses.Select(a => policy.PickDestination(new DefaultHttpContext { Connection = { RemoteIpAddress = a } }, cluster, available)!.DestinationId)];
        }

        var original = Picks(all);
        var withoutBPicks = Picks(withoutB);
        var restored = Picks(all);

        Assert.Equal(["A", "B", "C"], original.Distinct().Order());
        for (var i = 0; i < addresses.Count; i++)
        {
            if (original[i] == "B")
            {
                Assert.NotEqual("B", withoutBPicks[i]);
            }
            else
            {
                Assert.Equal(original[i], withoutBPicks[i]);
            }
        }

        Assert.Equal(original, restored);
    }

    [Fact]
    public void IpHash_ShuffledDestinationOrder_GivesSameMapping()
    {
        var addresses = RandomAddresses(10_000, seed: 4);
        string[] shuffled = ["C", "A", "B"];

        foreach (var address in addresses)
        {
            Assert.Equal(Ids[Pick(address, Ids)], shuffled[Pick(address, shuffled)]);
        }
    }

    [Fact]
    public void HashAddress_IPv4MappedIPv6_HashesLikeIPv4()
    {
        var v4 = IPAddress.Parse("192.0.2.33");

        Assert.Equal(RendezvousHash.HashAddress(v4), RendezvousHash.HashAddress(v4.MapToIPv6()));
    }

    [Fact]
    public void Hashes_AreFixedValues_SoReplicasAndRestartsAgree()
    {
        // XxHash3 with seed 0: the same in every process, unlike string.GetHashCode.
        Assert.Equal(0xD0D496E05C553485UL, RendezvousHash.HashId("A"));
        Assert.Equal(0xB3D17992A3EB69BCUL, RendezvousHash.HashAddress(IPAddress.Parse("10.1.2.3")));
    }

    [Fact]
    public void Pick_Weighted_SharesFollowWeights()
    {
        var counts = new int[2];
        ulong[] hashes = [RendezvousHash.HashId("A"), RendezvousHash.HashId("B")];
        foreach (var address in RandomAddresses(10_000, seed: 5))
        {
            counts[RendezvousHash.Pick(RendezvousHash.HashAddress(address), hashes, [3, 1])]++;
        }

        Assert.InRange(counts[0], 7_200, 7_800);
    }

    private static int Pick(IPAddress address, string[] ids) =>
        RendezvousHash.Pick(RendezvousHash.HashAddress(address), ids.Select(RendezvousHash.HashId).ToArray(), ids.Select(_ => 1).ToArray());

    private static List<IPAddress> RandomAddresses(int count, int seed)
    {
        var random = new Random(seed);
        var addresses = new List<IPAddress>(count);
        for (var i = 0; i < count; i++)
        {
            var bytes = new byte[i % 2 == 0 ? 4 : 16];
            random.NextBytes(bytes);
            addresses.Add(new IPAddress(bytes));
        }

        return addresses;
    }
}
