namespace Balancer.Tests.Infrastructure;

/// <summary>Bytes a piece of work allocates on the calling thread, counted so a collection elsewhere cannot fail a test.</summary>
/// <remarks>
/// The thread's count moves by up to an allocation quantum (about 8 KB) when another test's collection retires this
/// thread's allocation context mid-measure; CI saw that on work that allocates nothing. Work that does allocate shows
/// the same bytes in every round, so the fewest of a few rounds is exact for it and zero for work that allocates nothing.
/// </remarks>
public static class Allocations
{
    /// <summary>The fewest bytes <paramref name="work"/> allocated in any of <paramref name="rounds"/> runs; the first run also warms it up.</summary>
    public static long Fewest(Action work, int rounds = 3)
    {
        var fewest = long.MaxValue;
        for (var round = 0; round < rounds; round++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            work();
            fewest = Math.Min(fewest, GC.GetAllocatedBytesForCurrentThread() - before);
        }

        return fewest;
    }
}
