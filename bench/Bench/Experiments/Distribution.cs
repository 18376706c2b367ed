using Bench.Load;
using Bench.Processes;
using Bench.Reporting;

namespace Bench.Experiments;

/// <summary>
/// The QoS paper's Table 5.1: per policy, 10 runs of 1000 requests, how many each backend received,
/// counted by the backends themselves (and checked against the X-Backend header the client saw).
/// </summary>
internal static class Distribution
{
    public static readonly string[] Policies = ["RoundRobin", "LeastConnections", "IpHash"];
    public const int IpHashClients = 100;

    public static async Task RunAsync(Lab lab, Report report)
    {
        var options = lab.Options;
        var names = lab.Backends.Select(b => b.Name).ToArray();
        var perRun = new Table(["policy, run", .. names, "total", "failed", "X-Backend mismatches"]);
        var means = new Dictionary<string, double[]>();
        foreach (var policy in Policies)
        {
            var balancer = await lab.StartBalancerAsync("distribution-" + policy, policy);
            try
            {
                using var client = new LoadClient(balancer.Url, policy == "IpHash" ? IpHashClients : 0);
                var sums = new double[names.Length];
                for (var run = 1; run <= options.PaperRuns; run++)
                {
                    var before = await lab.ServedAsync();
                    var result = await client.RunAsync(new LoadPlan("/", options.PaperRequests, Concurrency: 1));
                    var after = await lab.ServedAsync();
                    var counts = names.Select(n => (double)(after[n] - before[n])).ToArray();
                    var mismatches = names.Sum(n => Math.Abs(result.ByBackend.GetValueOrDefault(n) - (after[n] - before[n])));
                    perRun.Row($"{policy} #{run}", [.. counts, counts.Sum(), result.Failed, mismatches]);
                    for (var i = 0; i < names.Length; i++)
                    {
                        sums[i] += counts[i];
                    }
                }

                means[policy] = [.. sums.Select(s => s / options.PaperRuns)];
            }
            finally
            {
                lab.Stop(balancer);
            }
        }

        var summary = new Table(["policy", .. names.Select(n => "mean " + n), "largest deviation from an even split (%)"]);
        foreach (var (policy, mean) in means)
        {
            var even = mean.Sum() / mean.Length;
            summary.Row(policy, [.. mean, mean.Max(m => Math.Abs(m - even)) / even * 100]);
        }

        report.Add("distribution: requests per backend")
            .Text($"Per policy, {options.PaperRuns} runs of {options.PaperRequests} sequential `GET /` through the balancer; counts are the " +
                  "backends' own (`GET /admin/stats` before and after each run), as the paper counted at the servers with Wireshark. " +
                  $"IpHash clients come from {IpHashClients} loopback addresses (127.0.3.1-{IpHashClients}), spread evenly over the requests; " +
                  "with one address IpHash would send everything to one backend, by design.")
            .Table(summary)
            .Chart("distribution.svg", "mean requests per backend by policy",
                SvgChart.Bars("Mean requests per backend per run", "requests", [.. means.Keys],
                    [.. names.Select((n, i) => new Series(n, [.. means.Values.Select(m => m[i])]))]))
            .Table(perRun);
    }
}
