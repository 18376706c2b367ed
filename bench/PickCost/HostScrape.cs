using System.Diagnostics;
using System.Globalization;
using Balancer.Hosting;
using Balancer.Telemetry;

namespace PickCost;

/// <summary>
/// What one <c>/metrics</c> scrape costs the process: a real balancer (no load, no active probes) of N destinations,
/// scraped many times over its management listener by a client in the same process that reads and discards the
/// body, and many times straight into <see cref="Stream.Null"/> (the collection and serialization alone, no HTTP).
/// Per scrape: process CPU time, bytes allocated, wall time, averaged over the scrapes of a run; and the first three
/// scrapes of the fresh process one by one. Usage: PickCost scrape N [scrapes] [seconds before the scrapes].
/// </summary>
internal static class HostScrape
{
    public static async Task RunAsync(int count, int scrapes, TimeSpan pauseBefore)
    {
        // The pause comes before the first scrapes: a profiler then sees them too.
        await BenchHost.RunAsync(count, pauseBefore, async (app, _) =>
        {
            var registry = app.Services.GetRequiredService<BalancerMetricsRegistry>();
            var management = app.Services.GetRequiredService<Listeners>().ManagementAddress;
            using var client = new HttpClient { BaseAddress = management };
            var lines = 0;
            var bytes = 0L;
            // The first scrapes of a fresh process, one by one: they create the series and run code not yet optimised.
            var firsts = new List<string>();
            for (var i = 0; i < 3; i++)
            {
                var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
                var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
                var firstWatch = Stopwatch.StartNew();
                var text = await client.GetStringAsync("/metrics");
                firsts.Add(string.Create(CultureInfo.InvariantCulture,
                    $"{(Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalMilliseconds:0} ms CPU, {(GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore) / 1e6:0.0} MB, {firstWatch.Elapsed.TotalMilliseconds:0} ms"));
                lines = text.Count(c => c == '\n');
                bytes = System.Text.Encoding.UTF8.GetByteCount(text);
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{count} destinations: {lines} lines, {bytes / 1e6:0.00} MB"));
            Console.WriteLine($"first three scrapes (HTTP GET, body read into a string): {string.Join("; ", firsts)}");
            Console.WriteLine("| how | CPU per scrape (ms) | allocated per scrape (KB) | wall per scrape (ms) | GCs gen0/1/2 |");
            Console.WriteLine("|---|---:|---:|---:|---|");
            foreach (var (name, scrape) in new (string, Func<Task>)[]
            {
                ("prometheus-net's part alone (its callbacks and series) into Stream.Null", () => registry.Registry.CollectAndExportAsTextAsync(Stream.Null)),
                ("serialization into Stream.Null", () => registry.ExportAsync(Stream.Null)),
                ("HTTP GET, body read and discarded", async () =>
                {
                    using var response = await client.GetAsync("/metrics", HttpCompletionOption.ResponseHeadersRead);
                    await (await response.Content.ReadAsStreamAsync()).CopyToAsync(Stream.Null);
                }),
            })
            {
                // Warm up: the first scrapes create the series and compile the paths.
                for (var i = 0; i < 5; i++)
                {
                    await scrape();
                }

                var gens = new[] { GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2) };
                var allocated = GC.GetTotalAllocatedBytes(precise: true);
                var cpu = Process.GetCurrentProcess().TotalProcessorTime;
                var watch = Stopwatch.StartNew();
                for (var i = 0; i < scrapes; i++)
                {
                    await scrape();
                }

                var wallMs = watch.Elapsed.TotalMilliseconds / scrapes;
                var cpuMs = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds / scrapes;
                var allocatedKb = (GC.GetTotalAllocatedBytes(precise: true) - allocated) / 1e3 / scrapes;
                var gcs = $"{GC.CollectionCount(0) - gens[0]}/{GC.CollectionCount(1) - gens[1]}/{GC.CollectionCount(2) - gens[2]}";
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {cpuMs:0.0} | {allocatedKb:0} | {wallMs:0.0} | {gcs} |"));
            }
        });
    }
}
