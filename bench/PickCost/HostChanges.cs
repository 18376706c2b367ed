using System.Globalization;
using Balancer.Health;
using Balancer.Hosting;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace PickCost;

/// <summary>
/// What one state change costs a whole balancer: an in-process balancer of N destinations (no load, passive health
/// checks on so that health decides the available list, no active probes), and per policy 20 drains and enables through
/// the management API as an operator makes them, then 20 health changes Down and Up as the health tracker makes them
/// (a passive failure and its end). Per change: the bytes the process allocated (also apart for the changes that take a
/// destination out and those that bring it back, since only the first make a new available list) and the CPU it used from the call until
/// it returned (the new available list and the policy's snapshot are built on that thread), and the CPU of the first
/// pick after it. Nothing else runs in the process, so all of it is the change's. For IpHash, whose lookup table is
/// built off the changing thread, the process CPU is also taken from the call until the policy has settled (every
/// table the change asked for built), and the tables built are counted.
/// </summary>
internal static class HostChanges
{
    private const int Changes = 20;

    public static async Task RunAsync(int count, int rounds, string[] policies)
    {
        Console.WriteLine("| destinations | policy | change | allocated per change, median / worst (KB) | allocated, out (drain, Down) / back (enable, Up), medians (KB) | CPU per change, median / worst (ms) | next pick, median / worst (ms) | CPU until settled, median / worst (ms) | tables built |");
        Console.WriteLine("|---:|---|---|---:|---:|---:|---:|---:|---:|");
        foreach (var policy in policies)
        {
            var directory = Directory.CreateTempSubdirectory("pickcost-changes-");
            try
            {
                var path = Path.Combine(directory.FullName, "balancer.json");
                await File.WriteAllBytesAsync(path, Program.ConfigJson(count, seed: 0, listen: true, policy: policy, passiveHealth: true));
                await using var app = BalancerHost.Create(path, [], builder => builder.Logging.ClearProviders());
                await app.StartAsync();
                var cluster = app.Services.GetRequiredService<IProxyStateLookup>().GetClusters().Single();
                var picker = app.Services.GetServices<Yarp.ReverseProxy.LoadBalancing.ILoadBalancingPolicy>().Single(p => p.Name == policy);
                var tracker = app.Services.GetRequiredService<DestinationHealthTracker>();
                using var management = new HttpClient { BaseAddress = app.Services.GetRequiredService<Listeners>().ManagementAddress };
                var context = new Microsoft.AspNetCore.Http.DefaultHttpContext();
                context.Connection.RemoteIpAddress = System.Net.IPAddress.Parse("10.1.2.3");
                picker.PickDestination(context, cluster, cluster.DestinationsState.AvailableDestinations);
                var tables = Tables.For(picker, cluster);
                var drains = new Costs(tables);
                var health = new Costs(tables);
                for (var round = 0; round < rounds; round++)
                {
                    for (var change = 0; change < Changes; change++)
                    {
                        var id = $"d{change / 2}";
                        var down = change % 2 == 0;
                        await drains.MeasureAsync(down, async () =>
                        {
                            using var response = await management.PostAsync($"/api/destinations/backends/{id}/{(down ? "drain" : "enable")}", null);
                            response.EnsureSuccessStatusCode();
                        }, () => picker.PickDestination(context, cluster, cluster.DestinationsState.AvailableDestinations));
                    }

                    for (var change = 0; change < Changes; change++)
                    {
                        var destination = cluster.Destinations[$"d{change / 2 + 10}"];
                        var down = change % 2 == 0;
                        await health.MeasureAsync(down, () =>
                        {
                            tracker.SetPassive(cluster, destination, down ? DestinationHealth.Unhealthy : DestinationHealth.Unknown, TimeSpan.FromHours(1));
                            return Task.CompletedTask;
                        }, () => picker.PickDestination(context, cluster, cluster.DestinationsState.AvailableDestinations));
                    }
                }

                Console.WriteLine(drains.Row(count, policy, "drain/enable (runtime API)"));
                Console.WriteLine(health.Row(count, policy, "Down/Up (health tracker)"));
                await app.StopAsync();
            }
            finally
            {
                directory.Delete(recursive: true);
            }
        }
    }

    private sealed class Costs(Tables? tables)
    {
        private readonly List<double> _bytes = [];
        private readonly List<double> _bytesOut = [];
        private readonly List<double> _bytesBack = [];
        private readonly List<double> _cpu = [];
        private readonly List<double> _pick = [];
        private readonly List<double> _settled = [];
        private int _tables;

        public async Task MeasureAsync(bool outOfService, Func<Task> change, Action pick)
        {
            var allocated = GC.GetTotalAllocatedBytes(precise: true);
            var cpu = Program.ProcessCpu();
            await change();
            _cpu.Add((Program.ProcessCpu() - cpu).TotalMilliseconds);
            _bytes.Add((GC.GetTotalAllocatedBytes(precise: true) - allocated) / 1024.0);
            (outOfService ? _bytesOut : _bytesBack).Add(_bytes[^1]);
            var clock = Program.ThreadCpu();
            pick();
            _pick.Add((Program.ThreadCpu() - clock).TotalMilliseconds);
            if (tables is not null)
            {
                _tables += await tables.SettleAsync();
                _settled.Add((Program.ProcessCpu() - cpu).TotalMilliseconds);
            }
        }

        public string Row(int count, string policy, string change) =>
            string.Create(CultureInfo.InvariantCulture, $"| {count:N0} | {policy} | {change} | {Cell(_bytes, "0")} | {Median(_bytesOut, "0.0")} / {Median(_bytesBack, "0.0")} | {Cell(_cpu, "0.000")} | {Cell(_pick, "0.000")} | {Cell(_settled, "0.000")} | {(tables is null ? "-" : _tables)} |");

        private static string Median(List<double> values, string format)
        {
            values.Sort();
            return values.Count == 0 ? "-" : values[values.Count / 2].ToString(format, CultureInfo.InvariantCulture);
        }

        private static string Cell(List<double> values, string format)
        {
            if (values.Count == 0)
            {
                return "-";
            }

            values.Sort();
            return values[values.Count / 2].ToString(format, CultureInfo.InvariantCulture) + " / " + values[^1].ToString(format, CultureInfo.InvariantCulture);
        }
    }
}

/// <summary>Waits, sleeping between looks so that the wait itself costs no CPU, until IpHash's tables are built, and counts them.</summary>
internal sealed class Tables(Balancer.LoadBalancing.ClusterPolicyState.Table clusters, ClusterState cluster)
{
    private int _builds = clusters.TableBuilds(cluster);

    public static Tables? For(Yarp.ReverseProxy.LoadBalancing.ILoadBalancingPolicy policy, ClusterState cluster) =>
        policy is Balancer.LoadBalancing.IpHashPolicy ipHash ? new Tables(ipHash.Clusters, cluster) : null;

    /// <summary>Returns how many tables were built since the last call.</summary>
    public async Task<int> SettleAsync()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while ((clusters.Building(cluster) || !ReferenceEquals(clusters.CachedTable(cluster)?.List, cluster.DestinationsState.AllDestinations)) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(1);
        }

        var builds = clusters.TableBuilds(cluster);
        var built = builds - _builds;
        _builds = builds;
        return built;
    }
}
