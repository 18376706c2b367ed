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
/// (a passive failure and its end). Per change: the bytes the process allocated and the CPU it used from the call until
/// it returned (the new available list and the policy's snapshot are built on that thread), and the CPU of the first
/// pick after it. Nothing else runs in the process, so all of it is the change's.
/// </summary>
internal static class HostChanges
{
    private const int Changes = 20;

    public static async Task RunAsync(int count, int rounds, string[] policies)
    {
        Console.WriteLine("| destinations | policy | change | allocated per change, median / worst (KB) | CPU per change, median / worst (ms) | next pick, median / worst (ms) |");
        Console.WriteLine("|---:|---|---|---:|---:|---:|");
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
                var drains = new Costs();
                var health = new Costs();
                for (var round = 0; round < rounds; round++)
                {
                    for (var change = 0; change < Changes; change++)
                    {
                        var id = $"d{change / 2}";
                        var down = change % 2 == 0;
                        await drains.MeasureAsync(async () =>
                        {
                            using var response = await management.PostAsync($"/api/destinations/backends/{id}/{(down ? "drain" : "enable")}", null);
                            response.EnsureSuccessStatusCode();
                        }, () => picker.PickDestination(context, cluster, cluster.DestinationsState.AvailableDestinations));
                    }

                    for (var change = 0; change < Changes; change++)
                    {
                        var destination = cluster.Destinations[$"d{change / 2 + 10}"];
                        var down = change % 2 == 0;
                        await health.MeasureAsync(() =>
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

    private sealed class Costs
    {
        private readonly List<double> _bytes = [];
        private readonly List<double> _cpu = [];
        private readonly List<double> _pick = [];

        public async Task MeasureAsync(Func<Task> change, Action pick)
        {
            var allocated = GC.GetTotalAllocatedBytes(precise: true);
            var cpu = Program.ProcessCpu();
            await change();
            _cpu.Add((Program.ProcessCpu() - cpu).TotalMilliseconds);
            _bytes.Add((GC.GetTotalAllocatedBytes(precise: true) - allocated) / 1024.0);
            var clock = Program.ThreadCpu();
            pick();
            _pick.Add((Program.ThreadCpu() - clock).TotalMilliseconds);
        }

        public string Row(int count, string policy, string change) =>
            string.Create(CultureInfo.InvariantCulture, $"| {count:N0} | {policy} | {change} | {Cell(_bytes, "0")} | {Cell(_cpu, "0.000")} | {Cell(_pick, "0.000")} |");

        private static string Cell(List<double> values, string format)
        {
            values.Sort();
            return values[values.Count / 2].ToString(format, CultureInfo.InvariantCulture) + " / " + values[^1].ToString(format, CultureInfo.InvariantCulture);
        }
    }
}
