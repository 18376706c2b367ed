using System.Globalization;
using Balancer.Configuration;
using Balancer.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;

namespace Balancer.Tests.Configuration;

/// <summary>A changed config file is read and applied on a thread of its own at the configured nice value, which ends with it.</summary>
[Trait("Category", "Unit")]
public sealed class LowPriorityReloadTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("low-priority-reload-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void Start_RunsTheWorkOnItsOwnBackgroundThreadAtTheNiceValue_CallerKeepsItsOwn()
    {
        Assert.True(OperatingSystem.IsLinux(), "nice values are Linux's");
        var callerNice = LowPriorityThread.CurrentNice();
        Assert.NotNull(callerNice);
        Assert.InRange(callerNice.Value, -20, 17);
        (int? Nice, int Thread, string? Name, bool Background) seen = default;

        var thread = LowPriorityThread.Start("low priority test", 18, () =>
            seen = (LowPriorityThread.CurrentNice(), Environment.CurrentManagedThreadId, Thread.CurrentThread.Name, Thread.CurrentThread.IsBackground));
        Assert.True(thread.Join(TimeSpan.FromSeconds(30)), "the work ended");

        Assert.Equal(18, seen.Nice);
        Assert.NotEqual(Environment.CurrentManagedThreadId, seen.Thread);
        Assert.Equal("low priority test", seen.Name);
        Assert.True(seen.Background);
        Assert.Equal(callerNice, LowPriorityThread.CurrentNice());
    }

    [Fact]
    public async Task ChangedFile_AppliedOnTheReloadThreadAtTheConfiguredNice_NoThreadLeftLowered()
    {
        var (path, _, provider) = Watch(() => 17);
        using var _ = provider;
        (int? Nice, string? Name)? applied = null;
        using var registration = provider.GetReloadToken().RegisterChangeCallback(_ => applied = (LowPriorityThread.CurrentNice(), Thread.CurrentThread.Name), null);

        File.WriteAllText(path, Config(weight: 2, nice: "17"));
        await Poll.UntilAsync(() => applied is not null, TimeSpan.FromSeconds(30), "the reload applied");

        Assert.Equal((17, "config reload"), applied);
        Assert.True(provider.TryGet(WeightKey, out var weight));
        Assert.Equal("2", weight);
        await Poll.UntilAsync(() => ThreadsAtNice(17) == 0, TimeSpan.FromSeconds(30), "the reload thread ended");
    }

    [Fact]
    public async Task ReloadNiceOutOfRange_RejectedNamingTheKey_LastGoodFileKeepsServing()
    {
        var (path, tracker, provider) = Watch(() => 19);
        using var _ = provider;

        File.WriteAllText(path, Config(weight: 2, nice: "20"));
        await Poll.UntilAsync(() => tracker.Last is not null, TimeSpan.FromSeconds(30), "the reload rejected");

        Assert.False(tracker.Last!.Success);
        Assert.Contains("Balancer:ReloadNice", tracker.Last.Error);
        Assert.True(provider.TryGet(WeightKey, out var weight));
        Assert.Equal("1", weight);
    }

    /// <summary>A loaded provider of a file of one destination of weight 1, watching it closely.</summary>
    private (string Path, ConfigReloadTracker Tracker, ValidatedJsonConfigurationProvider Provider) Watch(Func<int> nice)
    {
        var path = Path.Combine(_directory, "balancer.json");
        File.WriteAllText(path, Config(weight: 1, nice: "17"));
        var tracker = new ConfigReloadTracker(TimeProvider.System);
        var source = new ValidatedJsonConfigurationSource(path, tracker, TimeProvider.System)
        {
            Debounce = TimeSpan.FromMilliseconds(10),
            PollInterval = TimeSpan.FromMilliseconds(50),
            ReloadNice = nice,
        };
        var provider = (ValidatedJsonConfigurationProvider)source.Build(new ConfigurationBuilder());
        provider.Load();
        return (path, tracker, provider);
    }

    private const string WeightKey = "ReverseProxy:Clusters:backends:Destinations:a:Metadata:Weight";

    private static string Config(int weight, string nice) => $$"""
        {
          "Balancer": { "ReloadNice": {{nice}} },
          "ReverseProxy": {
            "Routes": { "all": { "ClusterId": "backends", "Match": { "Path": "{**catch-all}" } } },
            "Clusters": { "backends": { "Destinations": { "a": { "Address": "http://127.0.0.1:5001/", "Metadata": { "Weight": "{{weight}}" } } } } }
          }
        }
        """;

    /// <summary>Threads of this process whose nice value (field 19 of their stat line) is <paramref name="nice"/>.</summary>
    private static int ThreadsAtNice(int nice) => Directory.GetDirectories("/proc/self/task").Count(task =>
    {
        try
        {
            var stat = File.ReadAllText(Path.Combine(task, "stat"));
            // The command name in parentheses may hold spaces; the fields after it are space-separated.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return int.Parse(fields[16], CultureInfo.InvariantCulture) == nice;
        }
        catch (IOException)
        {
            return false; // the thread ended while listed
        }
    });
}
