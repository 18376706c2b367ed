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
/// Once as a change no one announced makes it (every destination looked at), once as the runtime API's drains and enables
/// make it (the change announced: only that destination looked at again).
/// </summary>
internal static class AvailableList
{
    public static void Run(int[] sizes)
    {
        Console.WriteLine("| destinations | change | CPU per build, least / first quartile / median / worst (ms) | allocated per build (KB) |");
        Console.WriteLine("|---|---:|---:|---:|");
        foreach (var size in sizes.Length > 0 ? sizes : [1000, 10_000])
        {
            Measure(size, announced: false);
            Measure(size, announced: true);
        }
    }

    private static void Measure(int size, bool announced)
    {
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
            var changes = new AvailabilityChanges();
            var policy = new RuntimeAvailableDestinations(new NeverAsked(), overrides, changes);
            var cluster = new ClusterState("c");
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

                // The announced change: a destination drained on even rounds, enabled again on the odd one after.
                var changed = made[round / 2 % 100];
                var mode = round % 2 == 0 ? AdminMode.Drain : AdminMode.Active;
                if (announced)
                {
                    overrides.Update("c", changed.DestinationId, _ => new DestinationOverride(mode, null, DateTimeOffset.UnixEpoch, "bench"));
                }

                var before = GC.GetAllocatedBytesForCurrentThread();
                var clock = Program.ThreadCpu();
                IReadOnlyList<DestinationState> available;
                if (announced)
                {
                    using (changes.Announce(cluster, changed))
                    {
                        available = policy.GetAvailalableDestinations(config, all);
                    }
                }
                else
                {
                    available = policy.GetAvailalableDestinations(config, all);
                }

                cpu.Add((Program.ThreadCpu() - clock).TotalMilliseconds);
                bytes = GC.GetAllocatedBytesForCurrentThread() - before;
                if (available.Count != size - (announced && round % 2 == 0 ? 2 : 1))
                {
                    throw new InvalidOperationException($"{available.Count} available of {size}, one drained");
                }
            }

            cpu.Sort();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {size:N0} | {(announced ? "announced" : "full pass")} | {cpu[0]:0.000} / {cpu[cpu.Count / 4]:0.000} / {cpu[cpu.Count / 2]:0.000} / {cpu[^1]:0.000} | {bytes / 1024.0:0.0} |"));
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
