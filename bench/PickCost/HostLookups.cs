using System.Diagnostics;
using System.Globalization;
using Balancer.Resilience;
using Balancer.Telemetry;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Model;

namespace PickCost;

/// <summary>
/// What the request path's per-destination lookups cost in a whole balancer of N destinations: the destination's
/// metrics (<see cref="ProxyMetrics.For"/>, every proxied request) and its withdrawable client
/// (<see cref="WithdrawableClient.For"/>, every replay-safe request), each destination looked up in a shuffled order so
/// that caches miss as they would under traffic, and both for the same destination as a replay-safe request makes them.
/// Nanoseconds, the median of 9 rounds of 1,000,000.
/// </summary>
internal static class HostLookups
{
    private const int Lookups = 1_000_000;

    public static async Task RunAsync(int count)
    {
        await BenchHost.RunAsync(count, TimeSpan.Zero, (app, _) =>
        {
            var cluster = app.Services.GetRequiredService<IProxyStateLookup>().GetClusters().Single();
            var metrics = app.Services.GetRequiredService<ProxyMetrics>();
            var client = (WithdrawableClient)cluster.Model.HttpClient;
            var random = new Random(1);
            var order = cluster.Destinations.Values.OrderBy(_ => random.Next()).ToArray();
            var id = cluster.ClusterId;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{count} destinations: metrics {Median(order, d => metrics.For(id, d)):0.0} ns, withdrawable client {Median(order, client.For):0.0} ns per lookup, both for one request {Median(order, d => { client.For(d); return metrics.For(id, d); }):0.0} ns"));
            return Task.CompletedTask;
        });
    }

    private static double Median(DestinationState[] order, Func<DestinationState, object> lookup)
    {
        var times = new List<double>();
        for (var round = 0; round < 10; round++)
        {
            var watch = Stopwatch.StartNew();
            for (var i = 0; i < Lookups; i++)
            {
                _ = lookup(order[i % order.Length]);
            }

            // The first round makes what the lookups find.
            if (round > 0)
            {
                times.Add(watch.Elapsed.TotalNanoseconds / Lookups);
            }
        }

        times.Sort();
        return times[times.Count / 2];
    }
}
