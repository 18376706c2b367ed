using System.Globalization;
using Balancer.Runtime;
using Balancer.Tests.LoadBalancing;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace PickCost;

/// <summary>
/// What building one cluster's available list costs the thread of a state change: the balancer's available-destinations
/// wrapper over YARP's <c>HealthyOrPanic</c> for N destinations held as YARP holds them (a read-only list), active health
/// checks on, one destination drained. CPU of the calling thread per build, each with the caches cold (32 MB walked between builds), median and worst of 300; bytes per build.
/// </summary>
internal static class AvailableList
{
    public static void Run(int[] sizes)
    {
        Console.WriteLine("| destinations | CPU per build, least / first quartile / median / worst (ms) | allocated per build (KB) |");
        Console.WriteLine("|---:|---:|---:|");
        foreach (var size in sizes.Length > 0 ? sizes : [1000, 10_000])
        {
            var random = new Random(size);
            var made = Destinations.Make([.. Enumerable.Range(0, size).Select(i => ($"d{i:00000}", random.Next(1, 1001)))]);
            foreach (var destination in made)
            {
                destination.Health.Active = DestinationHealth.Healthy;
            }

            IReadOnlyList<DestinationState> all = made.ToList().AsReadOnly();
            var overrides = new RuntimeOverrides(null);
            overrides.Update("c", made[size / 2].DestinationId, _ => new DestinationOverride(AdminMode.Drain, null, DateTimeOffset.UnixEpoch, "bench"));
            var policy = new RuntimeAvailableDestinations(new NeverAsked(), overrides);
            var config = new ClusterConfig
            {
                ClusterId = "c",
                HealthCheck = new HealthCheckConfig { Active = new ActiveHealthCheckConfig { Enabled = true } },
            };

            List<double> cpu = [];
            long bytes = 0;
            // A busy balancer's requests and probes have used the caches since the last change: each build starts cold.
            var other = new long[4 * 1024 * 1024];
            for (var round = 0; round < 300; round++)
            {
                for (var i = 0; i < other.Length; i += 8)
                {
                    other[i]++;
                }

                var before = GC.GetAllocatedBytesForCurrentThread();
                var clock = Program.ThreadCpu();
                var available = policy.GetAvailalableDestinations(config, all);
                cpu.Add((Program.ThreadCpu() - clock).TotalMilliseconds);
                bytes = GC.GetAllocatedBytesForCurrentThread() - before;
                if (available.Count != size - 1)
                {
                    throw new InvalidOperationException($"{available.Count} available of {size}, one drained");
                }
            }

            cpu.Sort();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {size:N0} | {cpu[0]:0.000} / {cpu[cpu.Count / 4]:0.000} / {cpu[cpu.Count / 2]:0.000} / {cpu[^1]:0.000} | {bytes / 1024.0:0.0} |"));
        }
    }

    /// <summary>YARP's default policy by name: the wrapper applies the rule itself and never asks it.</summary>
    private sealed class NeverAsked : IAvailableDestinationsPolicy
    {
        public string Name => "HealthyOrPanic";

        public IReadOnlyList<DestinationState> GetAvailalableDestinations(ClusterConfig config, IReadOnlyList<DestinationState> allDestinations) =>
            throw new InvalidOperationException("not asked");
    }
}
