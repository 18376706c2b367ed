using System.Diagnostics;
using System.Globalization;
using Balancer.Configuration;
using Microsoft.AspNetCore.Builder;

namespace PickCost;

/// <summary>
/// What a whole config reload costs the process: a real balancer (no load, no active probes) of N destinations, its
/// file replaced by one with every weight drawn again, measured from the replacement until YARP reports it applied
/// and the process has settled: bytes allocated, CPU time, collections by generation and their pauses, and the bytes
/// still held afterwards. Nothing else runs in the process, so all of it is the reload's.
/// </summary>
internal static class HostReload
{
    public static async Task RunAsync(int count, int rounds, TimeSpan pauseBeforeReloads)
    {
        await BenchHost.RunAsync(count, pauseBeforeReloads, (app, path) => RoundsAsync(app, path, rounds, round => Program.ConfigJson(count, seed: round, listen: true)));
    }

    /// <summary>Replaces the balancer's config file <paramref name="rounds"/> times by <paramref name="config"/> of the round, and prints what each reload cost.</summary>
    internal static async Task RoundsAsync(WebApplication app, string path, int rounds, Func<int, byte[]> config)
    {
        var tracker = app.Services.GetRequiredService<ConfigReloadTracker>();
        Console.WriteLine("| round | applied in (ms) | allocated (MB) | process CPU (ms) | GCs gen0/1/2 | GC pause total (ms) | then a gen0: promoted (MB), pause (ms) | then a gen1: promoted (MB), pause (ms) | held after, change (MB) |");
        Console.WriteLine("|---:|---:|---:|---:|---|---:|---|---|---:|");
        for (var round = 1; round <= rounds; round++)
        {
            var next = config(round);
            var staged = path + ".next";
            await File.WriteAllBytesAsync(staged, next);
            var held = GC.GetTotalMemory(forceFullCollection: true);
            var applied = new TaskCompletionSource<ConfigReload>(TaskCreationOptions.RunContinuationsAsynchronously);
            void OnRecorded(ConfigReload reload) => applied.TrySetResult(reload);
            tracker.Recorded += OnRecorded;
            var gens = new[] { GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2) };
            var pause = GC.GetTotalPauseDuration();
            var allocated = GC.GetTotalAllocatedBytes(precise: true);
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var watch = Stopwatch.StartNew();
            File.Move(staged, path, overwrite: true);
            var reload = await applied.Task.WaitAsync(TimeSpan.FromSeconds(120));
            var appliedMs = watch.Elapsed.TotalMilliseconds;
            tracker.Recorded -= OnRecorded;
            if (!reload.Success)
            {
                throw new InvalidOperationException($"reload failed: {reload.Error}");
            }

            // Whatever the change set off after YARP applied it (policies, metrics, status) runs within this.
            await Task.Delay(TimeSpan.FromSeconds(2));
            var allocatedMb = (GC.GetTotalAllocatedBytes(precise: true) - allocated) / 1e6;
            var cpuMs = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds;
            var gcs = $"{GC.CollectionCount(0) - gens[0]}/{GC.CollectionCount(1) - gens[1]}/{GC.CollectionCount(2) - gens[2]}";
            var pauseMs = (GC.GetTotalPauseDuration() - pause).TotalMilliseconds;
            // What the reload leaves to the collections after it: its new objects still in gen0 are copied by the next
            // gen0 collection, and all of them by the next gen1 into gen2 (under load, requests set both off soon).
            var (nextGen0Mb, nextGen0Ms) = Collect(0);
            var (nextGen1Mb, nextGen1Ms) = Collect(1);
            var heldChange = (GC.GetTotalMemory(forceFullCollection: true) - held) / 1e6;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {round} | {appliedMs:0} | {allocatedMb:0.0} | {cpuMs:0} | {gcs} | {pauseMs:0.0} | {nextGen0Mb:0.0}, {nextGen0Ms:0.0} | {nextGen1Mb:0.0}, {nextGen1Ms:0.0} | {heldChange:0.0} |"));
        }
    }

    /// <summary>A blocking collection of <paramref name="generation"/>: the bytes it promoted and its pause.</summary>
    private static (double PromotedMb, double PauseMs) Collect(int generation)
    {
        GC.Collect(generation, GCCollectionMode.Forced, blocking: true);
        var info = GC.GetGCMemoryInfo(GCKind.Ephemeral);
        return (info.PromotedBytes / 1e6, info.PauseDurations[0].TotalMilliseconds);
    }
}
