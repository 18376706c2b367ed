using Balancer.LoadBalancing;
using Balancer.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Balancer.Tests.LoadBalancing;

[Trait("Category", "Unit")]
public sealed class EarliestDeadlineFirstTests(ITestOutputHelper output)
{
    [Fact]
    public void Weights532_1000Picks_Split500_300_200_NeverMoreThanThreeInARow()
    {
        var order = new EarliestDeadlineFirst([5, 3, 2]);
        var picks = Enumerable.Range(0, 1000).Select(_ => order.Next()).ToArray();

        Assert.Equal([500, 300, 200], [picks.Count(p => p == 0), picks.Count(p => p == 1), picks.Count(p => p == 2)]);
        Assert.DoesNotContain("0000", string.Concat(picks));
    }

    [Fact]
    public void EqualWeights_GoInIndexOrder()
    {
        var order = new EarliestDeadlineFirst([7, 7, 7, 7]);

        Assert.Equal([0, 1, 2, 3, 0, 1, 2, 3], Enumerable.Range(0, 8).Select(_ => order.Next()));
    }

    [Fact]
    public void Weights1To1000_1000Destinations_10MillionPicks_EveryShareWithinThreePicksOfItsWeight()
    {
        // The issue asks for every share within 0.1 percentage point over 10,000,000 picks; the order gives far
        // more: each destination is within 1 + N * weight / total picks (here at most 3) of picks * weight / total.
        const int Picks = 10_000_000;
        var random = new Random(22);
        var weights = Enumerable.Range(0, 1000).Select(_ => random.Next(1, 1001)).ToArray();
        var order = new EarliestDeadlineFirst(weights);
        var counts = new int[weights.Length];
        for (var i = 0; i < Picks; i++)
        {
            counts[order.Next()]++;
        }

        double total = weights.Sum();
        var worstPicks = Enumerable.Range(0, weights.Length).Max(i => Math.Abs(counts[i] - (double)Picks * weights[i] / total));
        var worstPoints = Enumerable.Range(0, weights.Length).Max(i => Math.Abs(100.0 * counts[i] / Picks - 100.0 * weights[i] / total));
        output.WriteLine($"worst destination {worstPicks:0.###} picks ({worstPoints:0.#######} percentage points) from its share");
        Assert.True(worstPicks <= 3, $"a destination was {worstPicks:0.##} picks from its share");
        Assert.True(worstPoints < 0.1, $"a share was {worstPoints} percentage points off");
    }

    [Fact]
    public void Build_10000Destinations_Weights1To1000_SortedByCountingTheWeights_NoComparison_AndItsArrays()
    {
        var random = new Random(23);
        var weights = Enumerable.Range(0, 10_000).Select(_ => random.Next(1, 1001)).ToArray();
        var heavy = Enumerable.Repeat(1000, 10_000).ToArray();
        EarliestDeadlineFirst order = null!;

        var allocated = Allocations.Fewest(() => order = new EarliestDeadlineFirst(weights));

        // Weights, deadlines (picks so far) and heap: 4 + 4 + 4 bytes a destination, whatever the weights add up to.
        Assert.InRange(allocated, 120_000, 121_000);
        Assert.Equal(0, order.Comparisons);
        Assert.Equal(0, new EarliestDeadlineFirst(heavy).Comparisons);
    }

    [Fact]
    public void AtTheLimitOfPicksOfOneDestination_TheOrderStartsAgain_AsAfterAChange()
    {
        int[] weights = [2, 1, 3];
        // A new order's picks until one destination would be picked a fifth time.
        var fresh = new EarliestDeadlineFirst(weights);
        var counts = new int[weights.Length];
        List<int> period = [];
        for (var pick = fresh.Next(); counts[pick] < 4; pick = fresh.Next())
        {
            counts[pick]++;
            period.Add(pick);
        }

        // The heaviest, four picks out of eight.
        Assert.Equal([3, 1, 4], counts);

        var order = new EarliestDeadlineFirst(weights, everyoneFirst: false, restartAt: 5);

        Assert.Equal([.. period, .. period, .. period], Enumerable.Range(0, 3 * period.Count).Select(_ => order.Next()));
    }

    [Fact]
    public void Build_WeightsLargeForTheirNumber_HeapifiedInAtMostTwoComparisonsPerDestination()
    {
        var random = new Random(25);
        var weights = Enumerable.Range(0, 100).Select(_ => random.Next(1, 20_001)).ToArray();

        var order = new EarliestDeadlineFirst(weights);

        Assert.InRange(order.Comparisons, 1, 2 * weights.Length);
    }

    [Theory]
    [InlineData(1000, 1000, 26)]
    [InlineData(1000, 20, 27)]
    [InlineData(100, 20_000, 28)]
    [InlineData(1, 5, 29)]
    public void Picks_TheSameAsTheEarliestDeadlineFoundByScanning_WhicheverWayTheHeapWasBuilt(int count, int heaviest, int seed)
    {
        var random = new Random(seed);
        var weights = Enumerable.Range(0, count).Select(_ => random.Next(1, heaviest + 1)).ToArray();
        var order = new EarliestDeadlineFirst(weights);
        var due = Enumerable.Repeat(1L, count).ToArray();

        for (var pick = 0; pick < 20_000; pick++)
        {
            // The destination due first (due / weight smallest, ties to the lower index), found by looking at all.
            var first = 0;
            for (var i = 1; i < count; i++)
            {
                if (due[i] * weights[first] < due[first] * weights[i])
                {
                    first = i;
                }
            }

            Assert.Equal(first, order.Next());
            due[first]++;
        }
    }

    [Fact]
    public void Pick_10000Destinations_AllocatesNothing_AndCostsAtMostTwoComparisonsPerLevel()
    {
        var random = new Random(24);
        var order = new EarliestDeadlineFirst(Enumerable.Range(0, 10_000).Select(_ => random.Next(1, 1001)).ToArray());
        order.Next();
        var comparisons = order.Comparisons;

        var allocated = Allocations.Fewest(() =>
        {
            for (var i = 0; i < 100_000; i++)
            {
                order.Next();
            }
        });

        Assert.Equal(0, allocated);
        // A heap of 10,000 has 14 levels; a sift takes two comparisons per level at most.
        Assert.InRange((order.Comparisons - comparisons) / 300_000.0, 1, 2 * 14);
    }

    [Fact]
    public void EightThreads_ConcurrentPicks_SplitExactlyByWeight()
    {
        const int Threads = 8;
        int[] weights = [5, 3, 2, 1, 1];
        var order = new EarliestDeadlineFirst(weights);
        var counts = new int[Threads, weights.Length];
        using var start = new Barrier(Threads);
        var threads = Enumerable.Range(0, Threads).Select(t => new Thread(() =>
        {
            start.SignalAndWait();
            for (var i = 0; i < 12 * 1_000; i++)
            {
                counts[t, order.Next()]++;
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());

        // 96,000 picks are 8,000 whole periods of 12: no pick lost or repeated under contention.
        Assert.Equal([40_000, 24_000, 16_000, 8_000, 8_000], Enumerable.Range(0, weights.Length).Select(d => Enumerable.Range(0, Threads).Sum(t => counts[t, d])));
    }

    [Fact]
    public void SmoothSchedule_UnrollsOnlyShortPeriods()
    {
        Assert.True(SmoothWeightedRoundRobin.FitsUnrolled([1000, 999, 998]));
        Assert.True(SmoothWeightedRoundRobin.FitsUnrolled(Enumerable.Repeat(1, 362).ToArray()));
        Assert.False(SmoothWeightedRoundRobin.FitsUnrolled(Enumerable.Repeat(1, 363).ToArray()));
        Assert.False(SmoothWeightedRoundRobin.FitsUnrolled(Enumerable.Range(1, 100).ToArray()));
    }
}
