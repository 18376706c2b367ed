using System.Diagnostics.Tracing;
using System.Globalization;
using System.Net;
using Balancer.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Model;

namespace PickCost;

/// <summary>
/// What a young collection costs a whole balancer of N destinations once every destination has been used: an
/// in-process balancer in front of three in-process backends, every destination sent one request (its metrics, Down
/// signal and withdrawable client made) and, with PROBE-SECONDS above 0, probed every PROBE-SECONDS (its health log and
/// newest probe kept; probes keep running while it measures). Then 60 gen0 collections, each after allocating garbage
/// on this thread: the median and 90th percentile pause of those with no older generation collected, and the GC handles
/// the runtime reported (each weak-table entry is a dependent handle that every gen0 collection scans). With RELOADS,
/// then as many reloads that draw every weight again, measured as <c>reload-host</c> measures them.
/// </summary>
internal static class HostYoung
{
    public static async Task RunAsync(int count, int probeSeconds, int reloads)
    {
        await using var backends = await StartBackendsAsync();
        var addresses = backends.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.ToArray();
        var directory = Directory.CreateTempSubdirectory("pickcost-young-");
        try
        {
            var path = Path.Combine(directory.FullName, "balancer.json");
            byte[] Config(int seed) => Program.ConfigJson(count, seed, listen: true, addresses: addresses, probeSeconds: probeSeconds);
            await File.WriteAllBytesAsync(path, Config(0));
            await using var app = BalancerHost.Create(path, [], builder => builder.Logging.ClearProviders());
            await app.StartAsync();
            var cluster = app.Services.GetRequiredService<IProxyStateLookup>().GetClusters().Single();
            using var client = new HttpClient { BaseAddress = app.Services.GetRequiredService<Listeners>().ProxyAddress };
            // RoundRobin: count requests reach every destination once.
            var next = 0;
            await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
            {
                while (Interlocked.Increment(ref next) <= count)
                {
                    using var response = await client.GetAsync("/");
                    response.EnsureSuccessStatusCode();
                }
            }));

            if (probeSeconds > 0)
            {
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(probeSeconds * 4 + 30);
                while (cluster.Destinations.Values.Any(d => d.Health.Active == DestinationHealth.Unknown))
                {
                    if (DateTime.UtcNow > deadline)
                    {
                        throw new TimeoutException("not every destination was probed");
                    }

                    await Task.Delay(200);
                }
            }

            using var handles = new HandleCount();
            // Time for the probes (and anything else the balancer does in the background) between collections.
            var pauses = WeakTables.Gen0Pauses(new Random(1), onlyGen0: true, static () => Thread.Sleep(20));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{count} destinations, probes {(probeSeconds > 0 ? $"every {probeSeconds} s" : "off")}: gen0 pause median {pauses[pauses.Count / 2]:0.000} ms, p90 {pauses[pauses.Count * 9 / 10]:0.000} ms ({pauses.Count} gen0 alone), GC handles {handles.Last}"));
            if (reloads > 0)
            {
                await HostReload.RoundsAsync(app, path, reloads, Config);
            }

            await app.StopAsync();
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    /// <summary>Three backends (one app on three loopback ports) answering every request, /health too, with 200.</summary>
    private static async Task<WebApplication> StartBackendsAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(kestrel =>
        {
            for (var i = 0; i < 3; i++)
            {
                kestrel.Listen(IPAddress.Loopback, 0);
            }
        });
        var app = builder.Build();
        app.Run(static context => context.Response.WriteAsync("ok"));
        await app.StartAsync();
        return app;
    }

    /// <summary>The GC handle count the runtime reports after each collection (its GCHeapStats event).</summary>
    private sealed class HandleCount : EventListener
    {
        public long Last { get; private set; } = -1;

        protected override void OnEventSourceCreated(EventSource source)
        {
            if (source.Name == "Microsoft-Windows-DotNETRuntime")
            {
                EnableEvents(source, EventLevel.Informational, (EventKeywords)1);
            }
        }

        protected override void OnEventWritten(EventWrittenEventArgs e)
        {
            if (e.EventName?.StartsWith("GCHeapStats", StringComparison.Ordinal) == true && e.PayloadNames is { } names)
            {
                var at = names.IndexOf("GCHandleCount");
                if (at >= 0)
                {
                    Last = Convert.ToInt64(e.Payload![at], CultureInfo.InvariantCulture);
                }
            }
        }
    }
}
