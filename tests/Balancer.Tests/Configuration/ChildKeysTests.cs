using Balancer.Configuration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.Memory;

namespace Balancer.Tests.Configuration;

/// <summary>The config file's indexed child-key listing answers exactly what the scanning base class would.</summary>
[Trait("Category", "Unit")]
public sealed class ChildKeysTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("child-keys-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    public static TheoryData<string?, bool> Parents()
    {
        string?[] parents =
        [
            null, "ReverseProxy", "reverseproxy:clusters", "ReverseProxy:Clusters:backends:Destinations", "ReverseProxy:Clusters:backends:Destinations:d10",
            "ReverseProxy:Clusters:backends:Destinations:d10:Metadata", "ReverseProxy:Clusters:backends:Destinations:d10:Address",
            "ReverseProxy:Clusters:backends:Destinations:d1", "Balancer:Listen", "NoSuchSection",
            // Where the file's defaults add keys: to sections it lacks, and beside keys it sets.
            "ReverseProxy:Clusters:backends", "ReverseProxy:Clusters:backends:HealthCheck", "ReverseProxy:Clusters:backends:HealthCheck:Passive",
            "ReverseProxy:Clusters:other", "ReverseProxy:Clusters:other:HealthCheck", "ReverseProxy:Clusters:Other:HealthCheck:passive",
            "ReverseProxy:Clusters:other:Destinations:x", "ReverseProxy:Clusters:other:Destinations:x:Metadata",
        ];
        var data = new TheoryData<string?, bool>();
        foreach (var parent in parents)
        {
            data.Add(parent, false);
            data.Add(parent, true);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Parents))]
    public void GetChildKeys_SameAsScanningEveryKey(string? parent, bool emptyObject)
    {
        var path = Path.Combine(_directory, "balancer.json");
        var destinations = string.Join(",", Enumerable.Range(0, 30).Select(i =>
            $$"""
            "d{{i}}": { "Address": "http://127.0.0.1:{{5001 + (i % 3)}}/", "Metadata": { "Weight": "{{i + 1}}", "zone": "z{{i % 2}}" } }
            """));
        // An empty object is a key of its own until the file is accepted, which then drops it (and so maybe its section).
        var metadata = emptyObject ? "{}" : """{ "zone": "z" }""";
        File.WriteAllText(path, $$"""
            {
              "Balancer": { "Listen": ["http://127.0.0.1:0", "http://127.0.0.1:0"], "Management": { "Listen": "http://127.0.0.1:0" } },
              "ReverseProxy": {
                "Routes": { "all": { "ClusterId": "backends", "Match": { "Path": "{**catch-all}" } } },
                "Clusters": {
                  "backends": { "LoadBalancingPolicy": "RoundRobin", "Destinations": { {{destinations}} } },
                  "other": {
                    "HealthCheck": { "Passive": { "ReactivationPeriod": "00:00:10" }, "AvailableDestinationsPolicy": "HealthyOrPanic" },
                    "Destinations": { "x": { "Address": "http://127.0.0.1:5001/", "Metadata": {{metadata}} } }
                  }
                }
              }
            }
            """);
        var source = new ValidatedJsonConfigurationSource(path, new ConfigReloadTracker(TimeProvider.System), TimeProvider.System);
        using var indexed = (ValidatedJsonConfigurationProvider)source.Build(new ConfigurationBuilder());
        indexed.Load();
        var scanning = new MemoryConfigurationProvider(new MemoryConfigurationSource { InitialData = ConfigFile.Read(path).Data! });

        // The base class lists a child once per key below it; the configuration root keeps the first of each.
        Assert.Equal(Distinct(scanning.GetChildKeys([], parent)), Distinct(indexed.GetChildKeys([], parent)));
        // Keys of earlier providers are merged in and sorted together (numbers as numbers: 2 before 10).
        string[] earlier = ["zz", "2", "Balancer", "d7"];
        Assert.Equal(Distinct(scanning.GetChildKeys(earlier, parent)), Distinct(indexed.GetChildKeys(earlier, parent)));
    }

    [Fact]
    public void Reload_OnlyValuesChanged_KeepsTheIndexInForce_AKeyAddedOrRemovedBuildsANewOne()
    {
        var path = Path.Combine(_directory, "balancer.json");
        string File(string weights, string extra) => $$"""
            {
              "ReverseProxy": {
                "Routes": { "all": { "ClusterId": "backends", "Match": { "Path": "{**catch-all}" } } },
                "Clusters": { "backends": { "Destinations": {
                  "a": { "Address": "http://127.0.0.1:5001/", "Metadata": { "Weight": "{{weights}}" } }{{extra}} } } }
              }
            }
            """;
        System.IO.File.WriteAllText(path, File("1", ""));
        var first = ConfigFile.Read(path);
        var firstIndex = first.Children!;

        System.IO.File.WriteAllText(path, File("2", ""));
        var weightChanged = ConfigFile.Read(path, first.Data, firstIndex);
        System.IO.File.WriteAllText(path, File("2", """, "b": { "Address": "http://127.0.0.1:5002/" }"""));
        var added = ConfigFile.Read(path, weightChanged.Data, weightChanged.Children);

        // The defaults the file is given (passive health checks, the available-destinations policy) are the same keys each time.
        Assert.Equal("2", weightChanged.Data!["ReverseProxy:Clusters:backends:Destinations:a:Metadata:Weight"]);
        Assert.Same(firstIndex, weightChanged.Children);
        Assert.NotSame(firstIndex, added.Children);
        Assert.Equal(["a", "b"], added.Children!.Of("ReverseProxy:Clusters:backends:Destinations"));
        Assert.Equal(["Address"], added.Children.Of("ReverseProxy:Clusters:backends:Destinations:b"));
    }

    private static string[] Distinct(IEnumerable<string> keys) => [.. keys.Distinct(StringComparer.OrdinalIgnoreCase)];
}
