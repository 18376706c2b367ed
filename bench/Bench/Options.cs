using System.Globalization;

namespace Bench;

/// <summary>Command-line options of the harness (bench/run.sh passes them through).</summary>
internal sealed class Options
{
    /// <summary>What a full run without experiment names runs.</summary>
    public static readonly string[] DefaultExperiments = ["distribution", "qos", "rates", "heterogeneous", "mixed", "race", "race-tls", "race-unpinned", "warmup", "overhead", "observability"];

    /// <summary>
    /// What a smoke run without names checks: the default set and the soak. The soak (10 minutes) runs only
    /// when named in a full run, so the default run does not double in length.
    /// </summary>
    public static readonly string[] SmokeExperiments = [.. DefaultExperiments, "soak"];

    /// <summary>
    /// Every experiment. The scale experiment (thousands of destinations, about 10 minutes) runs only when
    /// named, in a smoke run too: it would more than double the smoke run that CI makes.
    /// </summary>
    public static readonly string[] AllExperiments = [.. SmokeExperiments, "scale"];

    public List<string> Experiments { get; } = [];

    public bool Smoke { get; private set; }

    /// <summary>Seconds per timed run (race, overhead, heterogeneous, each rate step); null = the mode's default.</summary>
    public double? Duration { get; private set; }

    public double? MixedDuration { get; private set; }

    public double? SoakDuration { get; private set; }

    public double? SoakReloadEvery { get; private set; }

    public double? SoakRestartEvery { get; private set; }

    public int? Runs { get; private set; }

    /// <summary>Seconds of load each proxy gets before it is measured; null = the mode's default.</summary>
    public double? Warmup { get; private set; }

    public string Repository { get; private set; } = ".";

    public string Output { get; private set; } = "bench/results";

    public string LoadCpus { get; private set; } = "0";

    public string ProxyCpus { get; private set; } = "0";

    public string BackendCpus { get; private set; } = "0";

    public string BuildConfiguration { get; private set; } = "Release";

    /// <summary>Where the PIDs of started processes are appended (bench/run.sh's trap reads it); default: beside the logs.</summary>
    public string? PidFile { get; private set; }

    /// <summary>The balancer's Native AOT executable: race, race-unpinned and warmup run it as <c>balancer-aot</c> beside the JIT build.</summary>
    public string? AotExecutable { get; private set; }

    /// <summary>CPUs in the proxy set: NGINX workers and HAProxy threads are set to it, as the balancer's runtime sees it.</summary>
    public int ProxyCoreCount => CpuList.Count(ProxyCpus);

    public int LoadCoreCount => CpuList.Count(LoadCpus);

    public TimeSpan RunDuration => TimeSpan.FromSeconds(Duration ?? (Smoke ? 1 : 10));

    public TimeSpan MixedRunDuration => TimeSpan.FromSeconds(MixedDuration ?? Duration ?? (Smoke ? 3 : 60));

    public int RepeatedRuns => Runs ?? (Smoke ? 1 : 3);

    /// <summary>
    /// The overhead experiment compares proxies a few percent apart, so it takes more, shorter rounds: more
    /// pairs for its side-by-side ratios in about the same time.
    /// </summary>
    public int OverheadRuns => Runs ?? (Smoke ? 1 : 6);

    /// <summary>Rounds of the observability experiment: three proxies only, so more rounds in the same time.</summary>
    public int ObservabilityRuns => Runs ?? (Smoke ? 1 : 40);

    public TimeSpan OverheadRunDuration => TimeSpan.FromSeconds(Duration ?? (Smoke ? 1 : 5));

    /// <summary>
    /// The least load a proxy gets before it is measured: .NET's tiered JIT compiles hot code up to three
    /// times (with dynamic PGO), and a process limited to one CPU waits ten times longer before promoting
    /// it, so a short warm-up measures the JIT rather than the balancer. NGINX and HAProxy get the same,
    /// though they do not need it. Settle rounds follow (<see cref="SettleRoundDuration"/>).
    /// </summary>
    public TimeSpan WarmupDuration => TimeSpan.FromSeconds(Warmup ?? (Smoke ? 1 : 20));

    /// <summary>After the warm-up, rounds of this length are run until two in a row agree on CPU per request.</summary>
    public TimeSpan SettleRoundDuration => TimeSpan.FromSeconds(Smoke ? 1 : 5);

    /// <summary>The most settle rounds a proxy gets before it is measured anyway (the report says so).</summary>
    public int MaxSettleRounds => Smoke ? 2 : 8;

    /// <summary>The soak's length: 10 minutes, smoke 8 s.</summary>
    public TimeSpan SoakRunDuration => TimeSpan.FromSeconds(SoakDuration ?? (Smoke ? 8 : 600));

    /// <summary>How often the soak rewrites the config file (alternating the policy): 30 s, smoke 2 s.</summary>
    public TimeSpan SoakReloadInterval => TimeSpan.FromSeconds(SoakReloadEvery ?? (Smoke ? 2 : 30));

    /// <summary>How often the soak restarts a backend (A, B, C in turn): 2 minutes, smoke 4 s.</summary>
    public TimeSpan SoakRestartInterval => TimeSpan.FromSeconds(SoakRestartEvery ?? (Smoke ? 4 : 120));

    /// <summary>What the soak counts as warm-up before memory growth is judged: 2 minutes (at most half the run), smoke 2 s.</summary>
    public TimeSpan SoakWarmUp => Smoke ? TimeSpan.FromSeconds(2) : TimeSpan.FromSeconds(Math.Min(120, SoakRunDuration.TotalSeconds / 2));

    /// <summary>The papers' repetition: 10 runs of 1000 requests; smoke: 2 runs of 100.</summary>
    public int PaperRuns => Smoke ? 2 : 10;

    public int PaperRequests => Smoke ? 100 : 1000;

    /// <summary>What this mode runs when no experiment is named.</summary>
    public IReadOnlyList<string> DefaultSet => Smoke ? SmokeExperiments : DefaultExperiments;

    /// <summary>The destination counts of the scale experiment: 3 to 10,000; smoke 3, 100, 300; or those of <c>--scale-counts</c>.</summary>
    public int[] ScaleCounts => ScaleCountsGiven ?? (Smoke ? [3, 100, 300] : [3, 100, 1000, 3000, 10000]);

    private int[]? ScaleCountsGiven { get; set; }

    /// <summary>The policies the scale experiment's paced client measures in turn, from <c>--scale-policies</c>; null = all of them.</summary>
    public string[]? ScalePolicies { get; private set; }

    public static Options Parse(IReadOnlyList<string> args)
    {
        var options = new Options();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            string Value() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{arg} needs a value.");
            switch (arg)
            {
                case "--smoke": options.Smoke = true; break;
                case "--duration": options.Duration = Seconds(arg, Value()); break;
                case "--mixed-duration": options.MixedDuration = Seconds(arg, Value()); break;
                case "--soak-duration": options.SoakDuration = Seconds(arg, Value()); break;
                case "--soak-reload-every": options.SoakReloadEvery = Seconds(arg, Value()); break;
                case "--soak-restart-every": options.SoakRestartEvery = Seconds(arg, Value()); break;
                case "--runs": options.Runs = Count(arg, Value()); break;
                case "--warmup": options.Warmup = Seconds(arg, Value()); break;
                case "--repo": options.Repository = Value(); break;
                case "--out": options.Output = Value(); break;
                case "--load-cpus": options.LoadCpus = CpuList.Check(arg, Value()); break;
                case "--proxy-cpus": options.ProxyCpus = CpuList.Check(arg, Value()); break;
                case "--backend-cpus": options.BackendCpus = CpuList.Check(arg, Value()); break;
                case "--configuration": options.BuildConfiguration = Value(); break;
                case "--pid-file": options.PidFile = Value(); break;
                case "--scale-counts": options.ScaleCountsGiven = [.. Value().Split(',').Select(c => Count(arg, c)).Order()]; break;
                case "--scale-policies": options.ScalePolicies = Value().Split(','); break;
                case "--aot-executable": options.AotExecutable = Path.GetFullPath(Value()); break;
                default:
                    if (arg.StartsWith('-') || !AllExperiments.Contains(arg))
                    {
                        throw new ArgumentException($"Unknown argument '{arg}'. Experiments: {string.Join(", ", AllExperiments)}.");
                    }

                    options.Experiments.Add(arg);
                    break;
            }
        }

        if (options.Experiments.Count == 0)
        {
            options.Experiments.AddRange(options.DefaultSet);
        }

        return options;
    }

    private static int Count(string name, string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value > 0
            ? value
            : throw new ArgumentException($"{name} must be a whole number above 0; got '{text}'.");

    private static double Seconds(string name, string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value > 0
            ? value
            : throw new ArgumentException($"{name} must be a positive number; got '{text}'.");
}

/// <summary>taskset CPU lists such as "0", "1-3" or "0,2".</summary>
internal static class CpuList
{
    public static int Count(string list)
    {
        var count = 0;
        foreach (var part in list.Split(','))
        {
            var range = part.Split('-');
            count += range.Length == 1 ? 1 : int.Parse(range[1], CultureInfo.InvariantCulture) - int.Parse(range[0], CultureInfo.InvariantCulture) + 1;
        }

        return count;
    }

    public static string Check(string name, string list)
    {
        foreach (var part in list.Split(','))
        {
            var range = part.Split('-');
            if (range.Length > 2 || !range.All(r => int.TryParse(r, NumberStyles.None, CultureInfo.InvariantCulture, out _)))
            {
                throw new ArgumentException($"{name} must be a CPU list like 0, 1-3 or 0,2; got '{list}'.");
            }
        }

        return list;
    }
}
