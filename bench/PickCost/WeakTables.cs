using System.Globalization;
using System.Runtime.CompilerServices;

namespace PickCost;

/// <summary>
/// What per-destination <see cref="ConditionalWeakTable{TKey, TValue}"/>s cost every gen0 collection: TABLES tables of
/// N entries (one dependent handle each), keys and values promoted to gen2 first, then 60 gen0 collections, each after
/// REPLACED values were replaced by new objects (AddOrUpdate, as a table updated on every probe is) and STORED new
/// objects were stored in old ones. Prints the median and 90th percentile gen0 pause. Nothing else runs in the process.
/// </summary>
internal static class WeakTables
{
    public static void Run(int count, int tables, int replaced, int stored)
    {
        var keys = new object[count];
        var holders = new Holder[count];
        for (var i = 0; i < count; i++)
        {
            keys[i] = new byte[200];
            holders[i] = new Holder();
        }

        var cwts = new ConditionalWeakTable<object, Holder>[tables];
        for (var t = 0; t < tables; t++)
        {
            cwts[t] = new ConditionalWeakTable<object, Holder>();
            foreach (var key in keys)
            {
                cwts[t].Add(key, new Holder());
            }
        }

        var random = new Random(1);
        var pauses = Gen0Pauses(random, onlyGen0: false, () =>
        {
            for (var u = 0; u < replaced && tables > 0; u++)
            {
                cwts[u % tables].AddOrUpdate(keys[random.Next(count)], new Holder());
            }

            for (var c = 0; c < stored; c++)
            {
                holders[random.Next(count)].Young = new Holder();
            }
        });
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{count} keys, {tables} tables, {replaced} replaced, {stored} stored: gen0 pause median {pauses[pauses.Count / 2]:0.000} ms, p90 {pauses[pauses.Count * 9 / 10]:0.000} ms"));
        GC.KeepAlive(cwts);
    }

    /// <summary>
    /// Moves everything alive into gen2, then 60 times runs <paramref name="beforeEach"/> and allocates garbage until the
    /// next gen0 collection: the milliseconds the process was paused each time, sorted (with <paramref name="onlyGen0"/>,
    /// only the times no older generation was collected).
    /// </summary>
    internal static List<double> Gen0Pauses(Random random, bool onlyGen0, Action beforeEach)
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        var sink = new object[64];
        var pauses = new List<double>();
        for (var round = 0; round < 60; round++)
        {
            beforeEach();
            var older = GC.CollectionCount(1);
            var collections = GC.CollectionCount(0);
            var pause = GC.GetTotalPauseDuration();
            while (GC.CollectionCount(0) == collections)
            {
                sink[random.Next(sink.Length)] = new byte[random.Next(100, 2000)];
            }

            if (!onlyGen0 || GC.CollectionCount(1) == older)
            {
                pauses.Add((GC.GetTotalPauseDuration() - pause).TotalMilliseconds);
            }
        }

        pauses.Sort();
        return pauses;
    }

    private sealed class Holder
    {
        public object? Young { get; set; }
    }
}
