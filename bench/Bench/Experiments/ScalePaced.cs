using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Bench.Load;
using Bench.Processes;
using Bench.Reporting;
using Bench.Stats;

namespace Bench.Experiments;

/// <summary>
/// What a state change adds to a request when nothing saturates the proxy: a paced open-loop client
/// (<see cref="PacedClient"/>) instead of wrk, its requests cut into equal windows at rest and one window holding a
/// burst of changes, for drains through the runtime API and for health changes Up -> Down -> Up seen by active probes.
/// Under wrk the worst request of a window swings by ten milliseconds at rest, so a change of one cannot be resolved
/// there; here the floor is what the same method gives at 3 destinations, where a change costs nothing measurable.
/// </summary>
internal static partial class Scale
{
    /// <summary>The paced client's rate: a few percent of what the proxy serves on its CPU, so it is never the limit.</summary>
    private const int PacedRate = 1000;

    private const int PacedConnections = 8;

    /// <summary>Rest windows before a burst of health changes: fewer than for drains, each being four times as long.</summary>
    private const int HealthRestWindows = 3;

    /// <summary>The policies measured in turn (RoundRobin only in a smoke run).</summary>
    private static readonly string[] PacedPolicies = ["RoundRobin", "LeastConnections", "IpHash"];

    /// <summary>After the policy is switched, before the next windows.</summary>
    private static readonly TimeSpan PolicySettle = TimeSpan.FromSeconds(5);

    /// <summary>Destinations whose health the harness switches (fewer in a cluster too small to keep one Up).</summary>
    private const int SwitchedDestinations = Changes / 2;

    /// <summary>A health window: probes every 5 s, a destination Down after one failed probe and Up after one good one.</summary>
    private static readonly TimeSpan HealthWindow = TimeSpan.FromSeconds(12);

    /// <summary>The destinations whose <c>Health</c> address is the harness's switch: d00000 onwards.</summary>
    private static string[] Switched(int count) =>
        [.. Enumerable.Range(0, Math.Min(SwitchedDestinations, count - 1)).Select(i => $"d{i:00000}")];

    /// <summary>Points the switched destinations' probes at <paramref name="health"/>; one failed probe makes a destination Down.</summary>
    private static void SwitchedHealth(JsonObject cluster, int count, HealthSwitch? health)
    {
        if (health is null)
        {
            return;
        }

        var destinations = cluster["Destinations"]!.AsObject();
        foreach (var id in Switched(count))
        {
            destinations[id]!["Health"] = health.AddressOf(id).ToString();
        }

        cluster["Metadata"] = new JsonObject { ["ConsecutiveFailuresHealthPolicy.Threshold"] = "1" };
    }

    /// <summary>
    /// The paced client's windows for drains, then for health changes, on a balancer at rest otherwise; for each policy of
    /// <see cref="PacedPolicies"/> in turn (the config's policy switched by a reload between them, outside any window).
    /// </summary>
    private static async Task<IReadOnlyList<PacedPhase>> PacedAsync(Lab lab, RunningBalancer balancer, HttpClient management, int count, HealthSwitch health)
    {
        var smoke = lab.Options.Smoke;
        var restWindows = smoke ? 1 : RestWindows;
        var healthRestWindows = smoke ? 1 : HealthRestWindows;
        string[] policies = lab.Options.ScalePolicies is { } chosen ? [.. PacedPolicies.Where(p => chosen.Contains(p, StringComparer.OrdinalIgnoreCase))]
            : smoke ? PacedPolicies[..1] : PacedPolicies;
        if (policies.Length == 0)
        {
            throw new ArgumentException($"--scale-policies names none of {string.Join(", ", PacedPolicies)}.");
        }

        var switched = Switched(count);
        var downBefore = await DownTransitionsAsync(management, switched);
        var perPolicy = Quiet + PolicySettle + LongestChange * 3 + Window * (restWindows + 1) + HealthWindow * (healthRestWindows + 1);
        await using var pauses = await lab.WatchPausesAsync(balancer.Target.Pid, perPolicy * policies.Length);
        var client = await PacedClient.StartAsync(balancer.Target.Url, PacedRate, PacedConnections, perPolicy * policies.Length);
        List<(string Name, int Changes, double Applied, PacedWindow[] AtRest, PacedWindow During)> measured = [];
        List<Metrics.RuntimePause> seen;
        await using (client)
        {
            await Task.Delay(Quiet);
            // The balancer starts with RoundRobin.
            var current = PacedPolicies[0];
            foreach (var policy in policies)
            {
                if (policy != current)
                {
                    current = policy;
                    File.Move(Prepare(balancer, config => config["ReverseProxy"]!["Clusters"]!["backends"]!["LoadBalancingPolicy"] = policy), balancer.ConfigPath, overwrite: true);
                    await UntilAsync(async () => (string?)(await ClusterAsync(management, "?limit=1"))["policy"] == policy, $"the policy {policy} applied");
                    // The reload's own collections and, for IpHash, the first lookup table are over before the windows.
                    await Task.Delay(PolicySettle);
                }

                measured.Add(await PacedWindowsAsync(client, $"{policy}, {Changes} drains and enables", Changes, Window, restWindows, async () =>
                {
                    for (var i = 0; i < Changes; i++)
                    {
                        var id = $"d{i / 2 % count:00000}";
                        using var response = await management.PostAsync($"/api/destinations/backends/{id}/{(i % 2 == 0 ? "drain" : "enable")}", null);
                        response.EnsureSuccessStatusCode();
                    }
                }));
                measured.Add(await PacedWindowsAsync(client, $"{policy}, {switched.Length} destinations Down and Up again", switched.Length * 2, HealthWindow, healthRestWindows, async () =>
                {
                    foreach (var healthy in new[] { false, true })
                    {
                        health.Healthy = healthy;
                        await UntilAsync(() => Task.FromResult(health.AllTold(switched)), $"every switched destination probed {(healthy ? "healthy" : "unhealthy")}");
                        // The probe's answer is judged as it arrives; this leaves the balancer time to apply it.
                        await Task.Delay(TimeSpan.FromMilliseconds(250));
                    }
                }));
            }

            seen = await pauses.StopAsync();
        }

        await client.WriteLogAsync(Path.Combine(lab.Directory, $"scale-{count}-paced.csv"));
        // The balancer's pauses in each change window, as the runtime reported them, beside the client's requests and stalls.
        await File.WriteAllLinesAsync(Path.Combine(lab.Directory, $"scale-{count}-paced-pauses.txt"), measured.SelectMany(m =>
            (string[])[$"{m.Name}: window {m.During.From:HH:mm:ss.fff} - {m.During.To:HH:mm:ss.fff}",
                .. seen.Where(p => p.Start >= m.During.From && p.Start < m.During.To)
                    .Select(p => string.Create(CultureInfo.InvariantCulture, $"  {p.Start:HH:mm:ss.ffffff} ({(p.Start - m.During.From).TotalMilliseconds:0} ms in): {p.Kind} {p.Ms:0.00} ms {p.Detail}"))]));
        // Checked after the windows, so that the balancer's status and metrics cost no request inside one.
        await UntilAsync(async () => (await ClusterAsync(management, "?state=Up&limit=1"))["matching"]!.GetValue<int>() == count, $"all {count} destinations Up after the health changes");
        var downs = await DownTransitionsAsync(management, switched) - downBefore;
        if (downs != switched.Length * policies.Length)
        {
            throw new InvalidOperationException($"The {switched.Length} switched destinations went Down {downs} times in {policies.Length} health windows, not once each in each.");
        }

        double LongestGc(PacedWindow w) => seen.Where(p => p.Kind == "gc" && p.Start >= w.From && p.Start < w.To).Select(p => p.Ms).DefaultIfEmpty(0).Max();
        return [.. measured.Select(m => new PacedPhase(m.Name, m.Changes, m.Applied, m.During, (m.During.To - m.During.From).TotalSeconds,
            LatencyStats.Median(m.AtRest.Select(w => w.WithoutClientStalls.WorstMs)), m.AtRest.Max(w => w.WithoutClientStalls.WorstMs),
            LatencyStats.Median(m.AtRest.Select(w => w.Timed.WorstMs)), LatencyStats.Median(m.AtRest.Select(w => w.WithoutClientStalls.P99Ms)),
            LatencyStats.Median(m.AtRest.Select(LongestGc)), LongestGc(m.During), LatencyStats.Median(m.AtRest.Select(w => w.ClientStallMs)),
            (int)LatencyStats.Median(m.AtRest.Select(w => (double)w.Timed.Requests))))];
    }

    /// <summary><paramref name="restWindows"/> windows of <paramref name="window"/> at rest, then one from the start of <paramref name="change"/> as long (longer when the change is not done a second before its end).</summary>
    private static async Task<(string Name, int Changes, double Applied, PacedWindow[] AtRest, PacedWindow During)> PacedWindowsAsync(
        PacedClient client, string name, int changes, TimeSpan window, int restWindows, Func<Task> change)
    {
        await PacedClient.CollectAsync();
        var restStart = DateTimeOffset.UtcNow;
        await Task.Delay(window * restWindows);
        await PacedClient.CollectAsync();
        var changeStart = DateTimeOffset.UtcNow;
        var watch = Stopwatch.StartNew();
        await change().WaitAsync(LongestChange);
        var applied = watch.Elapsed.TotalSeconds;
        var end = watch.Elapsed + Quiet > window ? watch.Elapsed + Quiet : window;
        await Task.Delay(end - watch.Elapsed);
        var changeEnd = DateTimeOffset.UtcNow;
        PacedWindow[] rest = [.. Enumerable.Range(0, restWindows).Select(i => client.Window(restStart + window * i, restStart + window * (i + 1)))];
        return (name, changes, applied, rest, client.Window(changeStart, changeEnd));
    }

    /// <summary>How many times <paramref name="destinations"/> went Down so far (<c>balancer_destination_health_transitions_total</c>).</summary>
    private static async Task<long> DownTransitionsAsync(HttpClient management, IReadOnlyCollection<string> destinations)
    {
        var names = destinations.Select(d => $"destination=\"{d}\"").ToArray();
        long total = 0;
        foreach (var line in (await management.GetStringAsync("/metrics")).Split('\n'))
        {
            if (line.StartsWith("balancer_destination_health_transitions_total{", StringComparison.Ordinal)
                && line.Contains("to=\"down\"", StringComparison.Ordinal) && names.Any(n => line.Contains(n, StringComparison.Ordinal)))
            {
                total += (long)double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
            }
        }

        return total;
    }

    private static void AddPacedReport(Section section, Report report, IReadOnlyList<(int Count, IReadOnlyList<PacedPhase> Phases)> results)
    {
        var table = new Table(["destinations, change", "changes", "applied in (s)", "window (s)", "worst at rest, median of windows (ms)", "worst at rest, largest window (ms)",
            "worst during (ms)", "added: worst during - median at rest (ms)", "as timed, client's stalls included: worst at rest (ms)", "worst during, as timed (ms)",
            "added as timed (ms)", "client's longest stall at rest (ms)", "client's longest stall during (ms)", "client's own GC during (ms)", "p99 at rest (ms)", "p99 during (ms)", "balancer's longest GC pause at rest (ms)",
            "balancer's longest GC pause during (ms)", "requests per window at rest", "requests during", "failed during"]);
        foreach (var (count, phases) in results)
        {
            foreach (var p in phases)
            {
                table.Row($"{Format.Number(count)}, {p.Name}", p.Changes, p.AppliedSeconds, p.WindowSeconds, p.RestWorstMs, p.RestWorstMaxMs, p.Change.WithoutClientStalls.WorstMs, p.AddedMs,
                    p.RestTimedWorstMs, p.Change.Timed.WorstMs, p.AddedTimedMs, p.RestClientStallMs, p.Change.ClientStallMs, p.Change.ClientGcMs,
                    p.RestP99Ms, p.Change.WithoutClientStalls.P99Ms, p.RestGcMs, p.ChangeGcMs, p.RestRequests, p.Change.Timed.Requests, p.Change.Timed.Failed);
            }
        }

        section.Text($"What a change adds to a request at rest: no wrk; a paced client (`bench/Bench/Load/PacedClient.cs`) starts {PacedRate} requests a second, open loop " +
                $"(whether or not earlier ones have returned), over {PacedConnections} keep-alive connections of its own, each timed from its start (every request in " +
                $"`raw/scale-N-paced.csv`). The client stalls too (its own collections, the CPU it shares with the backends): a thread of its own that sends nothing " +
                "wakes every millisecond, and a wake more than 1.5 ms after the one before counts the excess as a stall of the client (`raw/scale-N-paced-client-stalls.csv`); " +
                "each request's time without the client's stalls inside it is what the figures below use (as timed beside them), the balancer's own pauses in each change window in `raw/scale-N-paced-pauses.txt`. " +
                $"Its requests are cut into equal windows at rest ({RestWindows} before drains, {HealthRestWindows} before health changes), then one window as long from the first change (longer when the " +
                $"changes are not done a second before its end); added is the change window's worst request minus the median of the rest windows' worst. Drains: " +
                $"{Changes} drain and enable calls through the runtime API as above, {Window.TotalSeconds:0} s windows. Health: the first {SwitchedDestinations} destinations " +
                "(all but one in a smaller cluster) are probed at a health endpoint of the harness's own (their `Health` address; the cluster's `ConsecutiveFailuresHealthPolicy.Threshold` is 1): " +
                "it answers 503 until each of them has been probed, then 200 until each has been probed again, so each goes Down and Up once, " +
                $"{HealthWindow.TotalSeconds:0} s windows (probes every 5 s). Each policy in turn ({string.Join(", ", PacedPolicies)}; RoundRobin only in a smoke run), switched by a " +
                $"config reload between them, {PolicySettle.TotalSeconds:0} s before the next windows. What the same method gives at 3 destinations is its floor.")
            .Table(table);
        var (largest, phasesAtLargest) = results[^1];
        for (var i = 0; i < phasesAtLargest.Count; i++)
        {
            var p = phasesAtLargest[i];
            var floor = results[0].Phases[i];
            report.Targets.Add(new TargetCheck("scale", $"state changes at {Format.Number(largest)} destinations ({p.Name}) add < {ChangeTargetMs} ms to any request (paced client, worst during vs median of the worst at rest), none fails",
                $"added {Format.Number(p.AddedMs)} ms without the client's stalls (worst {Format.Number(p.Change.WithoutClientStalls.WorstMs)} ms vs {Format.Number(p.RestWorstMs)} ms at rest; " +
                $"as timed {Format.Number(p.AddedTimedMs)} ms; the same at {Format.Number(results[0].Count)} destinations: {Format.Number(floor.AddedMs)} ms), {p.Change.Timed.Failed} failed",
                p.AddedMs < ChangeTargetMs && p.Change.Timed.Failed == 0));
        }
    }

    /// <summary>A burst of changes under the paced client: how long it took, its window, and its rest windows' medians.</summary>
    private sealed record PacedPhase(string Name, int Changes, double AppliedSeconds, PacedWindow Change, double WindowSeconds, double RestWorstMs, double RestWorstMaxMs,
        double RestTimedWorstMs, double RestP99Ms, double RestGcMs, double ChangeGcMs, double RestClientStallMs, int RestRequests)
    {
        /// <summary>The change window's worst request minus the rest windows' median worst, each without the client's own stalls.</summary>
        public double AddedMs => Change.WithoutClientStalls.WorstMs - RestWorstMs;

        /// <summary>The same as timed, the client's stalls included.</summary>
        public double AddedTimedMs => Change.Timed.WorstMs - RestTimedWorstMs;
    }
}
