using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using Balancer.LoadBalancing;
using Balancer.Tests.LoadBalancing;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Model;

namespace PickCost;

/// <summary>
/// Measures, per policy and cluster size (weights 1-1000 from a seeded generator), what a change of the available
/// set costs the request that meets it, what a pick costs afterwards, and what the IpHash table build costs off
/// the request path. Medians of several rounds; single thread. Times are the thread's CPU time, not wall time,
/// so that other processes on a busy machine do not count. Usage: PickCost [destination counts...]; PickCost config N
/// (parse a file of N destinations), reload N (read its destinations as YARP does), disruption N (IpHash clients moved), reload-host N [rounds] [seconds before the first] (a whole balancer's reload), scrape N [scrapes] [seconds before] (what a /metrics scrape costs), drains [counts...] (RoundRobin drains and enables as the runtime API makes them), changes-host N [rounds] [policies...] (a whole balancer's drains and health changes), available [counts...] (one cluster's available list rebuilt), weak-tables N TABLES [REPLACED] [STORED] (what per-destination weak tables cost each gen0 collection), young-host N [PROBE-SECONDS] [RELOADS] (a whole balancer's gen0 collections once every destination was used, then its reloads), lookups-host N (the request path's per-destination lookups).
/// </summary>
public static partial class Program
{
    private const int Rounds = 9;

    public static void Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "config")
        {
            ConfigParse(int.Parse(args[1], CultureInfo.InvariantCulture));
            return;
        }

        if (args.Length > 0 && args[0] == "reload")
        {
            ConfigRead(int.Parse(args[1], CultureInfo.InvariantCulture));
            return;
        }

        if (args.Length > 0 && args[0] == "reload-bytes")
        {
            ReloadBytes(int.Parse(args[1], CultureInfo.InvariantCulture));
            return;
        }

        if (args.Length > 0 && args[0] == "reload-host")
        {
            HostReload.RunAsync(int.Parse(args[1], CultureInfo.InvariantCulture), args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 5,
                TimeSpan.FromSeconds(args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 0)).GetAwaiter().GetResult();
            return;
        }

        if (args.Length > 0 && args[0] == "scrape")
        {
            HostScrape.RunAsync(int.Parse(args[1], CultureInfo.InvariantCulture), args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 50,
                TimeSpan.FromSeconds(args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 0)).GetAwaiter().GetResult();
            return;
        }

        if (args.Length > 0 && args[0] == "drains")
        {
            Drains([.. args.Skip(1).Select(a => int.Parse(a, CultureInfo.InvariantCulture))]);
            return;
        }

        if (args.Length > 0 && args[0] == "weak-tables")
        {
            var numbers = args.Skip(1).Select(a => int.Parse(a, CultureInfo.InvariantCulture)).ToArray();
            WeakTables.Run(numbers[0], numbers[1], numbers.Length > 2 ? numbers[2] : 0, numbers.Length > 3 ? numbers[3] : 0);
            return;
        }

        if (args.Length > 0 && args[0] == "young-host")
        {
            HostYoung.RunAsync(int.Parse(args[1], CultureInfo.InvariantCulture), args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 0,
                args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 0).GetAwaiter().GetResult();
            return;
        }

        if (args.Length > 0 && args[0] == "lookups-host")
        {
            HostLookups.RunAsync(int.Parse(args[1], CultureInfo.InvariantCulture)).GetAwaiter().GetResult();
            return;
        }

        if (args.Length > 0 && args[0] == "available")
        {
            AvailableList.Run([.. args.Skip(1).Select(a => int.Parse(a, CultureInfo.InvariantCulture))]);
            return;
        }

        if (args.Length > 0 && args[0] == "changes-host")
        {
            HostChanges.RunAsync(int.Parse(args[1], CultureInfo.InvariantCulture), args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 3,
                args.Length > 3 ? args[3..] : ["RoundRobin", "LeastConnections", "IpHash"]).GetAwaiter().GetResult();
            return;
        }

        if (args.Length > 0 && args[0] == "disruption")
        {
            Disruption(int.Parse(args[1], CultureInfo.InvariantCulture), [.. args.Skip(2).Select(a => int.Parse(a, CultureInfo.InvariantCulture))]);
            return;
        }

        int[] sizes = args.Length > 0 ? [.. args.Select(a => int.Parse(a, CultureInfo.InvariantCulture))] : [100, 1000, 3000, 10_000];
        Console.WriteLine("| Destinations | Policy | Change: the request that meets it (median / worst, ms) | Pick after (ns) | Off the request path |");
        Console.WriteLine("|---:|---|---:|---:|---|");
        foreach (var size in sizes)
        {
            foreach (var name in new[] { "RoundRobin", "LeastConnections", "IpHash" })
            {
                Measure(size, name);
            }
        }
    }

    /// <summary>How many of 1,000,000 client keys change destination when one of <paramref name="count"/> leaves, per table size.</summary>
    private static void Disruption(int count, int[] sizes)
    {
        var random = new Random(35);
        var hashes = Enumerable.Range(0, count).Select(i => RendezvousHash.HashId($"destination-{i}")).ToArray();
        var weights = Enumerable.Range(0, count).Select(_ => random.Next(1, 1001)).ToArray();
        var gone = count / 2;
        var keys = Enumerable.Range(0, 1_000_000).Select(i => RendezvousHash.Mix((ulong)i + 12345)).ToArray();
        foreach (var size in sizes.Length > 0 ? sizes : [MaglevTable.SizeFor(count)])
        {
            var before = new MaglevTable(hashes, weights, size);
            var after = new MaglevTable([.. hashes.Where((_, i) => i != gone)], [.. weights.Where((_, i) => i != gone)], size);
            int own = 0, others = 0;
            foreach (var key in keys)
            {
                var was = before.Lookup(key);
                var now = after.Lookup(key);
                now = now >= gone ? now + 1 : now;
                own += was == gone ? 1 : 0;
                others += was != gone && now != was ? 1 : 0;
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{count} destinations, table {size}: {own / 1e4:0.000}% own, {others / 1e4:0.000}% others"));
        }
    }

    /// <summary>A config file of <paramref name="count"/> destinations over three backends, weights 1-1000.</summary>
    internal static byte[] ConfigJson(int count, int? seed = null, bool listen = false, string policy = "RoundRobin", bool passiveHealth = false,
        string[]? addresses = null, int probeSeconds = 0)
    {
        var random = new Random(seed ?? count);
        var destinations = string.Join(",\n", Enumerable.Range(0, count).Select(i =>
            $"\"d{i}\": {{ \"Address\": \"{(addresses is null ? $"http://127.0.0.1:{5001 + i % 3}/" : addresses[i % addresses.Length])}\", \"Metadata\": {{ \"Weight\": \"{random.Next(1, 1001)}\" }} }}"));
        var balancer = listen ? "\"Balancer\": { \"Listen\": \"http://127.0.0.1:0\", \"Management\": { \"Listen\": \"http://127.0.0.1:0\" } }," : string.Empty;
        var health = passiveHealth ? "\"HealthCheck\": { \"Passive\": { \"Enabled\": true } }," : string.Empty;
        if (probeSeconds > 0)
        {
            health = $"\"HealthCheck\": {{ \"Active\": {{ \"Enabled\": true, \"Interval\": \"{TimeSpan.FromSeconds(probeSeconds)}\", \"Timeout\": \"00:00:05\", \"Path\": \"/health\" }}, \"Passive\": {{ \"Enabled\": true }} }},";
        }
        var json = $$"""
            { {{balancer}} "ReverseProxy": {
                "Routes": { "all": { "ClusterId": "backends", "Match": { "Path": "{**catch-all}" } } },
                "Clusters": { "backends": { "LoadBalancingPolicy": "{{policy}}", {{health}} "Destinations": { {{destinations}} } } } } }
            """;
        return System.Text.Encoding.UTF8.GetBytes(json);
    }

    /// <summary>
    /// What reading the destinations of a parsed config of <paramref name="count"/> costs the way YARP reads them on every
    /// reload (each destination's address and metadata through IConfiguration), through a provider that scans every key
    /// for a section's children (the base class) and through the config file's own provider.
    /// </summary>
    private static void ConfigRead(int count)
    {
        var directory = Directory.CreateTempSubdirectory("pickcost-");
        try
        {
            var path = Path.Combine(directory.FullName, "balancer.json");
            File.WriteAllBytes(path, ConfigJson(count));
            var source = new Balancer.Configuration.ValidatedJsonConfigurationSource(path, new Balancer.Configuration.ConfigReloadTracker(TimeProvider.System), TimeProvider.System);
            using var indexed = (Balancer.Configuration.ValidatedJsonConfigurationProvider)source.Build(new Microsoft.Extensions.Configuration.ConfigurationBuilder());
            indexed.Load();
            var scanning = new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationProvider(
                new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationSource { InitialData = Balancer.Configuration.ConfigFile.Read(path).Data! });
            foreach (var (name, provider, rounds) in new (string, Microsoft.Extensions.Configuration.IConfigurationProvider, int)[] { ("scanning every key", scanning, 1), ("indexed", indexed, 5) })
            {
                var root = new Microsoft.Extensions.Configuration.ConfigurationRoot([provider]);
                var times = new List<double>();
                for (var round = 0; round < rounds; round++)
                {
                    var clock = CpuClock.StartNew();
                    var read = ReadLikeYarp(root);
                    times.Add(clock.Elapsed.TotalMilliseconds);
                    if (read != count)
                    {
                        throw new InvalidOperationException($"read {read} destinations, not {count}");
                    }
                }

                times.Sort();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{count} destinations, {name}: {times[times.Count / 2]:0.0} ms CPU (median of {rounds})"));
            }
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    private static int ReadLikeYarp(Microsoft.Extensions.Configuration.IConfiguration root)
    {
        var destinations = 0;
        foreach (var cluster in root.GetSection("ReverseProxy:Clusters").GetChildren())
        {
            foreach (var destination in cluster.GetSection("Destinations").GetChildren())
            {
                _ = destination["Address"] ?? throw new InvalidOperationException("no address");
                _ = destination["Health"];
                _ = destination["Host"];
                _ = destination.GetSection("Metadata").GetChildren().ToDictionary(m => m.Key, m => m.Value);
                destinations++;
            }
        }

        return destinations;
    }

    /// <summary>
    /// The bytes a reload of <paramref name="count"/> destinations allocates in the config file's provider (read, parse,
    /// validate, index its sections), and how many of them it keeps until the next reload.
    /// </summary>
    private static void ReloadBytes(int count)
    {
        var directory = Directory.CreateTempSubdirectory("pickcost-");
        try
        {
            var path = Path.Combine(directory.FullName, "balancer.json");
            File.WriteAllBytes(path, ConfigJson(count));
            for (var round = 0; round < 3; round++)
            {
                var before = GC.GetTotalMemory(forceFullCollection: true);
                var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
                var parsed = Balancer.Configuration.ConfigFile.Read(path);
                var parseBytes = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
                var parseKept = GC.GetTotalMemory(forceFullCollection: true) - before;
                GC.KeepAlive(parsed);
                parsed = null;
                before = GC.GetTotalMemory(forceFullCollection: true);
                var source = new Balancer.Configuration.ValidatedJsonConfigurationSource(path, new Balancer.Configuration.ConfigReloadTracker(TimeProvider.System), TimeProvider.System);
                using var provider = (Balancer.Configuration.ValidatedJsonConfigurationProvider)source.Build(new Microsoft.Extensions.Configuration.ConfigurationBuilder());
                allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
                provider.Load();
                var loadBytes = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
                var loadKept = GC.GetTotalMemory(forceFullCollection: true) - before;
                GC.KeepAlive(provider);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{count} destinations: ConfigFile.Read allocates {parseBytes / 1e6:0.0} MB and keeps {parseKept / 1e6:0.0} MB; the provider's load (the same and its section index) allocates {loadBytes / 1e6:0.0} MB and keeps {loadKept / 1e6:0.0} MB"));
            }
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    /// <summary>What reading, parsing and validating a config file of <paramref name="count"/> destinations costs (ConfigFile.Parse, as on every reload).</summary>
    private static void ConfigParse(int count)
    {
        var bytes = ConfigJson(count);
        var times = new List<double>();
        for (var round = 0; round < 5; round++)
        {
            var clock = CpuClock.StartNew();
            var result = Balancer.Configuration.ConfigFile.Parse(bytes, "scale.json");
            times.Add(clock.Elapsed.TotalMilliseconds);
            if (!result.IsValid)
            {
                throw new InvalidOperationException(string.Join("; ", result.Errors));
            }
        }

        times.Sort();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{count} destinations, {bytes.Length / 1e6:0.00} MB: ConfigFile.Parse {times[times.Count / 2]:0} ms CPU (median of 5, worst {times[^1]:0})"));
    }

    private static void Measure(int size, string name)
    {
        var random = new Random(size);
        var all = Destinations.Make([.. Enumerable.Range(0, size).Select(i => ($"destination-{i}", random.Next(1, 1001)))]);
        var changes = new List<double>();
        var builds = new List<double>();
        double pickNs = 0;
        var context = new DefaultHttpContext { Connection = { RemoteIpAddress = IPAddress.Parse("192.0.2.7") } };
        for (var round = 0; round < Rounds; round++)
        {
            var (policy, clusters) = Destinations.Policy(name);
            var pending = new List<Action>();
            clusters.RunBuild = pending.Add;
            var cluster = new ClusterState("c");
            Destinations.Available(cluster, all);
            policy.PickDestination(context, cluster, all);
            pending.ForEach(b => b());
            pending.Clear();

            // One destination leaves, as on a health change: YARP hands over a new list.
            DestinationState[] changed = [.. all.Where((_, i) => i != round)];
            Destinations.Available(cluster, changed);
            var clock = CpuClock.StartNew();
            policy.PickDestination(context, cluster, changed);
            changes.Add(clock.Elapsed.TotalMilliseconds);
            clock.Restart();
            pending.ForEach(b => b());
            if (pending.Count > 0)
            {
                builds.Add(clock.Elapsed.TotalMilliseconds);
            }

            const int Picks = 20_000;
            clock.Restart();
            for (var i = 0; i < Picks; i++)
            {
                context.Connection.RemoteIpAddress = new IPAddress((uint)i * 2654435761u);
                policy.PickDestination(context, cluster, changed);
            }

            pickNs = clock.Elapsed.TotalNanoseconds / Picks;
        }

        changes.Sort();
        builds.Sort();
        var offPath = builds.Count == 0 ? "nothing" : $"table build {builds[builds.Count / 2]:0.0} ms";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {size:N0} | {name} | {changes[changes.Count / 2]:0.000} / {changes[^1]:0.000} | {pickNs:0} | {offPath} |"));
    }

    /// <summary>
    /// A drain and an enable as the runtime API makes them (the override first, then YARP's new list), RoundRobin, with an
    /// operator's weight on another destination of the cluster: the CPU time per change of the picks from the override
    /// until the policy holds the new list's snapshot when nothing prepares it, and, when the changing thread prepares it
    /// (as the runtime API and the health tracker do), that preparation and the next pick. Medians of <see cref="Rounds"/> x 20 changes.
    /// </summary>
    private static void Drains(int[] sizes)
    {
        Console.WriteLine("| Destinations | Unprepared: picks that met a change (median / worst, ms) | Prepared: on the changing thread (median / worst, ms) | Prepared: the next pick (median / worst, ms) |");
        Console.WriteLine("|---:|---:|---:|---:|");
        foreach (var size in sizes.Length > 0 ? sizes : [1000, 10_000])
        {
            var unprepared = DrainCosts(size, prepare: false).Picks;
            var (preparing, picks) = DrainCosts(size, prepare: true);
            static string Cell(List<double> costs) => string.Create(CultureInfo.InvariantCulture, $"{costs[costs.Count / 2]:0.000} / {costs[^1]:0.000}");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {size:N0} | {Cell(unprepared)} | {Cell(preparing)} | {Cell(picks)} |"));
        }
    }

    private static (List<double> Preparing, List<double> Picks) DrainCosts(int size, bool prepare)
    {
        var context = new DefaultHttpContext();
        var random = new Random(size);
        var all = Destinations.Make([.. Enumerable.Range(0, size).Select(i => ($"destination-{i}", random.Next(1, 1001)))]);
        var preparing = new List<double>();
        var picks = new List<double>();
        for (var round = 0; round < Rounds; round++)
        {
            var overrides = new Balancer.Runtime.RuntimeOverrides(null);
            var policy = new RoundRobinPolicy(new EffectiveWeights(overrides, TimeProvider.System));
            var cluster = new ClusterState("c");
            Destinations.Available(cluster, all);
            overrides.Update("c", all[^1].DestinationId, _ => new(Balancer.Runtime.AdminMode.Active, 500, DateTimeOffset.UnixEpoch, "bench"));
            policy.PickDestination(context, cluster, all);
            for (var change = 0; change < 20; change++)
            {
                var id = all[change / 2].DestinationId;
                var drain = change % 2 == 0;
                IReadOnlyList<DestinationState> next = drain ? [.. all.Where(d => d.DestinationId != id)] : all;
                var clock = CpuClock.StartNew();
                overrides.Update("c", id, o => new(drain ? Balancer.Runtime.AdminMode.Drain : Balancer.Runtime.AdminMode.Active, o?.Weight, DateTimeOffset.UnixEpoch, "bench"));
                // A request between the override and the new list, as on a busy balancer.
                policy.PickDestination(context, cluster, cluster.DestinationsState.AvailableDestinations);
                Destinations.Available(cluster, next);
                if (prepare)
                {
                    policy.Prepare(cluster);
                    preparing.Add(clock.Elapsed.TotalMilliseconds);
                    clock.Restart();
                }

                policy.PickDestination(context, cluster, next);
                picks.Add(clock.Elapsed.TotalMilliseconds);
            }
        }

        preparing.Sort();
        picks.Sort();
        return (preparing, picks);
    }

    /// <summary>The calling thread's CPU time so far.</summary>
    internal static TimeSpan ThreadCpu() => CpuClock.Now(3);

    /// <summary>The process's CPU time so far (CLOCK_PROCESS_CPUTIME_ID, not the 10 ms ticks of /proc).</summary>
    internal static TimeSpan ProcessCpu() => CpuClock.Now(2);

    /// <summary>The calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID).</summary>
    private sealed partial class CpuClock
    {
        private TimeSpan _start = Now(3);

        public TimeSpan Elapsed => Now(3) - _start;

        public static CpuClock StartNew() => new();

        public void Restart() => _start = Now(3);

        internal static TimeSpan Now(int clock)
        {
            _ = ClockGetTime(clock, out var spec);
            return TimeSpan.FromTicks(spec.Seconds * TimeSpan.TicksPerSecond + spec.Nanoseconds / 100);
        }

        [LibraryImport("libc", EntryPoint = "clock_gettime")]
        private static partial int ClockGetTime(int clock, out TimeSpec spec);

        [StructLayout(LayoutKind.Sequential)]
        private struct TimeSpec
        {
            public long Seconds;
            public long Nanoseconds;
        }
    }
}
