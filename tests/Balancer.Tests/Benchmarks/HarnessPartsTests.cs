using Balancer.Tests.Infrastructure;
using Bench;
using Bench.Experiments;
using Bench.Processes;

namespace Balancer.Tests.Benchmarks;

[Trait("Category", "Unit")]
public sealed class HarnessPartsTests
{
    [Fact]
    public void ProxySummary_MediansAcrossRuns_AndTheBestRunsCpuPerRequest()
    {
        static ProxyRun Run(int run, long requests, double rps, double cpuSeconds) => new(
            "balancer", 64, run,
            new Bench.Load.WrkResult(requests, 10, rps, 0, 1, 1, 1, 1, 2, 5, 0, 0),
            cpuSeconds, 200L * 1024 * 1024, 20);

        // 28, 36 and 30 µs of CPU per request: the median is 30, the best 28.
        var summary = ProxySummary.Of([Run(1, 300_000, 30_000, 8.4), Run(2, 250_000, 25_000, 9.0), Run(3, 320_000, 32_000, 9.6)]);

        Assert.Equal(30_000, summary.Rps);
        Assert.Equal(3.0, summary.CpuPer100k, 9);
        Assert.Equal(2.8, summary.BestCpuPer100k, 9);
        Assert.Equal(3, summary.Runs);
    }

    [Fact]
    public void PacedClient_StillTicks_CountsOnlyTheStallsInsideTheRequest()
    {
        // A request from 100 to 200: a stall across its start (20 inside), one within it (10), one across its end (10),
        // one before and one after it (none).
        (long, long)[] stalls = [(10, 40), (50, 120), (150, 160), (190, 300), (200, 260)];

        Assert.Equal(40, Bench.Load.PacedClient.StillTicks(100, 200, stalls));
        Assert.Equal(0, Bench.Load.PacedClient.StillTicks(40, 50, stalls));
        Assert.Equal(100, Bench.Load.PacedClient.StillTicks(0, 1000, [(100, 200)]));
    }

    /// <summary>A 10 s wrk run of <paramref name="rps"/> requests a second, with the proxy's CPU seconds over it.</summary>
    private static ProxyRun Run(string proxy, int run, double rps, double cpuSeconds) => new(
        proxy, 64, run,
        new Bench.Load.WrkResult((long)(rps * 10), 10, rps, 0, 1, 1, 1, 1, 2, 5, 0, 0),
        cpuSeconds, 200L * 1024 * 1024, 20);

    [Fact]
    public void PairedRatio_MediansOfRoundByRoundRatios_NotRatiosOfMedians()
    {
        // The machine slows down in round 2 and more in round 3; in every round the proxy does 0.9x the baseline's RPS.
        List<ProxyRun> baseline = [Run("a", 1, 30_000, 6.0), Run("a", 2, 20_000, 6.0), Run("a", 3, 10_000, 6.0)];
        List<ProxyRun> proxy = [Run("b", 1, 27_000, 6.0), Run("b", 2, 18_000, 6.0), Run("b", 3, 9_000, 5.4), Run("b", 4, 1_000, 1.0)];

        var paired = PairedRatio.Of(proxy, baseline);

        // Round 4 has no baseline run and is left out.
        Assert.Equal(3, paired.Pairs);
        Assert.Equal(0.9, paired.Rps, 9);
        Assert.Equal(10, paired.RpsCostPercent, 9);
        // CPU per request, round by round: 1.111x, 1.111x, 1.0x.
        Assert.Equal(10.0 / 9, paired.CpuPerRequest, 9);
        Assert.Equal(100.0 / 9, paired.CpuCostPercent, 9);
    }

    [Fact]
    public void Bracketed_ComparesEachRunWithTheMeanOfBothBaselinesOfItsRound()
    {
        // The machine speeds up within each round: the run before "on" is slower than the run after it.
        List<ProxyRun> before = [Run("off", 1, 20_000, 4.0), Run("off", 2, 10_000, 2.0), Run("off", 3, 5_000, 1.0)];
        List<ProxyRun> after = [Run("copy", 1, 24_000, 4.8), Run("copy", 2, 12_000, 2.4)];
        List<ProxyRun> on = [Run("on", 1, 19_800, 4.84), Run("on", 2, 9_900, 2.42), Run("on", 3, 4_500, 1.0)];

        var rounds = PairedRatio.Bracketed(on, before, after);

        // Round 3 lacks its second baseline and is left out.
        Assert.Equal(2, rounds.Count);
        // 19 800 / mean(20 000, 24 000) = 0.9; against "before" alone, only 1% slower.
        Assert.All(rounds, r => Assert.Equal(0.9, r.Rps, 9));
        // CPU per request: both baselines spend 20 µs; "on" 4.84 s / 198 000 requests = 24.44 µs.
        Assert.All(rounds, r => Assert.Equal(4.84 / 198_000 / (4.0 / 200_000), r.CpuPerRequest, 9));
    }

    [Fact]
    public void OverheadReport_NamesTheBalancersDefaultTraceCap()
    {
        Assert.Equal(Balancer.Telemetry.TracingOptions.DefaultMaxTracesPerSecond, Overhead.ShippedTraceCap);
        Assert.Equal(Overhead.ShippedTraceCap, new Balancer.Telemetry.TracingOptions().MaxTracesPerSecond);
    }

    [Fact]
    public void ParseStat_CommandWithSpacesAndParentheses_FindsFieldsAfterIt()
    {
        var fields = ProcStat.ParseStat("1234 (dotnet (x) y) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 8 0")!;

        Assert.Equal("S", fields[0]);
        Assert.Equal("1", fields[1]);
        Assert.Equal("250", fields[11]);
        Assert.Equal("75", fields[12]);
    }

    [Fact]
    public void ParseKb_VmRssLine_ReadsKilobytes()
    {
        Assert.Equal(123456, ProcStat.ParseKb("VmRSS:\t  123456 kB"));
    }

    [Fact]
    public async Task CpuSeconds_CountsADescendantsWork_RssOfThisProcess()
    {
        // A tree of its own: this test host's tree changes as other tests start and end processes, and a child
        // that exits takes its CPU time out of the sum. Here the shell only waits, so the 0.2 s are its child's.
        using var tree = System.Diagnostics.Process.Start("/bin/sh", ["-c", "sh -c 'while :; do :; done' & wait"]);
        try
        {
            await Poll.UntilAsync(() => ProcStat.CpuSeconds(tree.Id) >= 0.2, TimeSpan.FromSeconds(30), "the spinning child's CPU to count");
        }
        finally
        {
            tree.Kill(entireProcessTree: true);
            await tree.WaitForExitAsync();
        }

        Assert.True(ProcStat.RssBytes(Environment.ProcessId) > 10 * 1024 * 1024);
    }

    [Fact]
    public void Options_Defaults_DefaultExperimentsThreeRunsOfTenSeconds_SoakOnlyWhenNamedOrSmoke()
    {
        var options = Options.Parse([]);

        Assert.Equal(Options.DefaultExperiments, options.Experiments);
        Assert.DoesNotContain("soak", options.Experiments);
        Assert.Equal(Options.SmokeExperiments, Options.Parse(["--smoke"]).Experiments);
        Assert.Contains("soak", Options.SmokeExperiments);
        Assert.DoesNotContain("scale", Options.SmokeExperiments);
        Assert.Equal(["scale"], Options.Parse(["scale", "--smoke"]).Experiments);
        Assert.Equal(TimeSpan.FromMinutes(10), Options.Parse(["soak"]).SoakRunDuration);
        Assert.Equal((TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(2)), (options.SoakReloadInterval, options.SoakRestartInterval));
        Assert.Equal(3, options.RepeatedRuns);
        Assert.Equal(TimeSpan.FromSeconds(10), options.RunDuration);
        Assert.Equal(TimeSpan.FromSeconds(60), options.MixedRunDuration);
        Assert.Equal((10, 1000), (options.PaperRuns, options.PaperRequests));
        Assert.Equal(TimeSpan.FromSeconds(20), options.WarmupDuration);
        Assert.Equal(TimeSpan.FromSeconds(1), Options.Parse(["--smoke"]).WarmupDuration);
        Assert.Equal(TimeSpan.FromSeconds(45), Options.Parse(["--warmup", "45"]).WarmupDuration);
    }

    [Fact]
    public void Options_SmokeWithExperimentsAndCpus_ParsesEach()
    {
        var options = Options.Parse(["race", "--smoke", "qos", "--duration", "2.5", "--proxy-cpus", "1-3", "--mixed-duration", "300"]);

        Assert.Equal(["race", "qos"], options.Experiments);
        Assert.True(options.Smoke);
        Assert.Equal(TimeSpan.FromSeconds(2.5), options.RunDuration);
        Assert.Equal(TimeSpan.FromSeconds(300), options.MixedRunDuration);
        Assert.Equal(3, options.ProxyCoreCount);
        Assert.Equal(1, options.RepeatedRuns);
    }

    [Theory]
    [InlineData("bogus")]
    [InlineData("--duration", "0")]
    [InlineData("--duration", "abc")]
    [InlineData("--proxy-cpus", "1-x")]
    [InlineData("--runs")]
    [InlineData("--runs", "2.5")]
    public void Options_BadArgument_ThrowsWithAMessage(params string[] args)
    {
        var error = Assert.Throws<ArgumentException>(() => Options.Parse(args));
        Assert.False(string.IsNullOrWhiteSpace(error.Message));
    }

    [Fact]
    public void ReportName_OneFolderPerExperimentSet_SmokeSaysSo()
    {
        Assert.Equal("full", global::Bench.Program.ReportName(Options.Parse([])));
        Assert.Equal("race-qos", global::Bench.Program.ReportName(Options.Parse(["race", "qos"])));
        Assert.Equal("full-smoke", global::Bench.Program.ReportName(Options.Parse(["--smoke"])));
        Assert.Equal("soak", global::Bench.Program.ReportName(Options.Parse(["soak"])));
        Assert.Equal("race-smoke", global::Bench.Program.ReportName(Options.Parse(["race", "--smoke"])));
    }

    [Fact]
    public void WarmUp_SettlesWhenTwoRoundsInARowAgreeWithinFivePercent()
    {
        Assert.False(WarmUp.Agree([]));
        Assert.False(WarmUp.Agree([30.0]));
        Assert.False(WarmUp.Agree([45.0, 33.0]));
        Assert.True(WarmUp.Agree([45.0, 33.0, 31.5]));
        Assert.False(WarmUp.Agree([30.0, 28.4]));
        Assert.True(WarmUp.Agree([30.0, 31.4]));

        var text = WarmUp.Describe([new WarmUp("balancer", 35.2, [33.3, 29.7, 28.0]), new WarmUp("nginx", 30, [16.1, 15.9])], Options.Parse([]));
        Assert.Equal(
            "Warm-up: 20 s of wrk -c64 per proxy, then 5 s rounds until two in a row agreed on CPU per request within 5% (at most 8): " +
            "balancer 35 s, rounds 33.3 / 29.7 / 28.0 µs (not settled); nginx 30 s, rounds 16.1 / 15.9 µs.",
            text);
    }
}
