using Balancer.Configuration;
using Balancer.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.Memory;
using Yarp.ReverseProxy.Configuration;

namespace Balancer.Tests.Configuration;

/// <summary>
/// YARP reads the <c>ReverseProxy</c> section through <see cref="ProxyConfigurationView"/>: from the config file's own
/// provider when nothing else sets a key below it, and the routes and clusters it builds are the same as from the
/// whole configuration; a key set by another source still wins.
/// </summary>
[Trait("Category", "Unit")]
public sealed class ProxyConfigurationViewTests : IDisposable
{
    /// <summary>Every key YARP's configuration reader knows, so that reading from the file alone is compared on all of them.</summary>
    private const string EveryKey = """
        {
          "Balancer": { "Listen": "http://127.0.0.1:0" },
          "ReverseProxy": {
            "Routes": {
              "api": {
                "ClusterId": "backends", "Order": 3, "MaxRequestBodySize": 1000, "AuthorizationPolicy": "Default", "RateLimiterPolicy": "rl",
                "OutputCachePolicy": "oc", "TimeoutPolicy": "tp", "Timeout": "00:00:30", "CorsPolicy": "cors",
                "Metadata": { "RateLimit.RequestsPerSecond": "5", "team": "a" },
                "Transforms": [ { "PathPrefix": "/api" }, { "RequestHeader": "X-A", "Set": "1" } ],
                "Match": {
                  "Path": "/api/{**rest}", "Methods": [ "GET", "POST" ], "Hosts": [ "a.example", "b.example" ],
                  "Headers": [ { "Name": "X-H", "Values": [ "1", "2" ], "Mode": "HeaderPrefix", "IsCaseSensitive": true } ],
                  "QueryParameters": [ { "Name": "q", "Values": [ "v" ], "Mode": "Contains", "IsCaseSensitive": false } ]
                }
              },
              "all": { "ClusterId": "backends", "Match": { "Path": "{**catch-all}" } }
            },
            "Clusters": {
              "backends": {
                "LoadBalancingPolicy": "RoundRobin",
                "SessionAffinity": {
                  "Enabled": true, "Policy": "Cookie", "FailurePolicy": "Redistribute", "AffinityKeyName": "k",
                  "Cookie": { "Path": "/", "SameSite": "Lax", "HttpOnly": true, "MaxAge": "01:00:00", "Domain": "example", "IsEssential": true, "SecurePolicy": "Always", "Expiration": "02:00:00" }
                },
                "HealthCheck": {
                  "AvailableDestinationsPolicy": "HealthyAndUnknown",
                  "Active": { "Enabled": true, "Interval": "00:00:05", "Timeout": "00:00:02", "Policy": "ConsecutiveFailures", "Path": "/health", "Query": "?x=1" },
                  "Passive": { "Enabled": true, "Policy": "TransportFailureRate", "ReactivationPeriod": "00:01:00" }
                },
                "HttpClient": {
                  "SslProtocols": [ "Tls12", "Tls13" ], "DangerousAcceptAnyServerCertificate": false, "MaxConnectionsPerServer": 10,
                  "EnableMultipleHttp2Connections": true, "RequestHeaderEncoding": "utf-8", "ResponseHeaderEncoding": "utf-8",
                  "WebProxy": { "Address": "http://proxy.example:3128", "BypassOnLocal": true, "UseDefaultCredentials": false }
                },
                "HttpRequest": { "ActivityTimeout": "00:02:00", "Version": "2", "VersionPolicy": "RequestVersionOrLower", "AllowResponseBuffering": false },
                "Metadata": { "ConsecutiveFailuresHealthPolicy.Threshold": "3" },
                "Destinations": {
                  "d1": { "Address": "http://127.0.0.1:5001/", "Health": "http://127.0.0.1:6001/", "Host": "one.example", "Metadata": { "Weight": "5", "zone": "a" } },
                  "d2": { "Address": "http://127.0.0.1:5002/" },
                  "d10": { "Address": "http://127.0.0.1:5003/", "Metadata": { "Weight": "2" } }
                }
              },
              "other": { "Destinations": { "x": { "Address": "http://127.0.0.1:5004/" } } }
            }
          }
        }
        """;

    private readonly string _directory = Directory.CreateTempSubdirectory("proxy-view-").FullName;

    private readonly List<ServiceProvider> _containers = [];

    public void Dispose()
    {
        _containers.ForEach(c => c.Dispose());
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public void NothingElseUnderReverseProxy_YarpReadsTheSameRoutesAndClustersAsFromTheWholeConfiguration()
    {
        var counting = new CountingSource(new Dictionary<string, string?> { ["Balancer:Management:Listen"] = "http://127.0.0.1:0" });
        using var root = Root(counting);
        var view = new ProxyConfigurationView(root);

        var fromView = YarpConfig(view);
        var asked = counting.ChildKeyCalls;
        var fromWhole = YarpConfig(root.GetSection(ProxyConfigurationView.SectionName));

        Assert.Equal(2, fromWhole.Routes.Count);
        Assert.Equal(2, fromWhole.Clusters.Count);
        Assert.Equal(fromWhole.Routes.OrderBy(r => r.RouteId), fromView.Routes.OrderBy(r => r.RouteId));
        Assert.Equal(fromWhole.Clusters.OrderBy(c => c.ClusterId), fromView.Clusters.OrderBy(c => c.ClusterId));
        Assert.Equal("5", fromView.Clusters.Single(c => c.ClusterId == "backends").Destinations!["d1"].Metadata!["Weight"]);
        // The other source is asked once per section YARP reads (Clusters, Routes), not once per destination and route.
        Assert.Equal(2, asked);
        Assert.True(counting.ChildKeyCalls - asked > 20, $"the whole configuration asked the other source {counting.ChildKeyCalls - asked} times");
    }

    [Theory]
    [InlineData("Clusters")]
    [InlineData("clusters:BACKENDS")]
    [InlineData("Clusters:backends:Destinations:d1")]
    [InlineData("Clusters:backends:Destinations:D1:metadata")]
    [InlineData("Clusters:backends:Destinations:d1:Metadata:Weight")]
    [InlineData("CLUSTERS:backends:destinations:d1:Metadata:WEIGHT")]
    [InlineData("clusters:backends:Destinations:d1:Metadata")]
    [InlineData("Routes:api:Transforms:1")]
    [InlineData("Routes:api:Match:Methods")]
    [InlineData("Nope")]
    [InlineData("Nope:deeper")]
    [InlineData("")]
    public void FromTheFileAlone_SectionsAnswerAsTheWholeConfigurations(string key)
    {
        using var root = Root(new CountingSource(new Dictionary<string, string?> { ["Balancer:Management:Listen"] = "http://127.0.0.1:0" }));
        var fromFile = new ProxyConfigurationView(root).Current();
        var fromWhole = root.GetSection(ProxyConfigurationView.SectionName);
        Assert.IsNotType<ConfigurationSection>(fromFile);

        static object?[] Describe(IConfigurationSection section) =>
        [
            section.Key, section.Path, section.Value, section.Exists(), section["Address"], section["Metadata:Weight"], section["0"],
            string.Join(",", section.GetChildren().Select(c => $"{c.Key}|{c.Path}|{c.Value}|{c.GetChildren().Count()}")),
            section.GetSection("a:b").Key, section.GetSection("a:b").Path,
        ];

        Assert.Equal(Describe(fromWhole.GetSection(key)), Describe(fromFile.GetSection(key)));
        Assert.Equal(Describe(fromWhole), Describe(fromFile));
        Assert.Throws<NotSupportedException>(() => fromFile.GetSection(key).Value = "x");
    }

    [Fact]
    public void FromTheFileAlone_DestinationIdsAndMetadataAreTheFilesOwnStrings()
    {
        using var root = Root(new CountingSource(new Dictionary<string, string?> { ["Balancer:Management:Listen"] = "http://127.0.0.1:0" }));
        var view = new ProxyConfigurationView(root);

        var first = YarpConfig(view).Clusters.Single(c => c.ClusterId == "backends").Destinations!;
        var second = YarpConfig(view).Clusters.Single(c => c.ClusterId == "backends").Destinations!;

        // Two reads of one file name the destinations and their metadata with the same strings, not a copy each.
        Assert.Same(first.Keys.Single(k => k == "d1"), second.Keys.Single(k => k == "d1"));
        Assert.Same(first["d1"].Metadata!.Keys.Single(k => k == "Weight"), second["d1"].Metadata!.Keys.Single(k => k == "Weight"));
        Assert.Same(root["ReverseProxy:Clusters:backends:Destinations:d1:Metadata:Weight"], second["d1"].Metadata!["Weight"]);
        Assert.Same(root["ReverseProxy:Clusters:backends:Destinations:d1:Address"], second["d1"].Address);
    }

    [Fact]
    public void FromTheFileAlone_ReadingAThousandDestinationsAllocatesLessThanAKilobyteEach()
    {
        var path = Path.Combine(_directory, "large.json");
        var destinations = string.Join(",", Enumerable.Range(0, 1000).Select(i =>
            $$"""
            "d{{i:0000}}": { "Address": "http://127.0.0.1:{{5001 + (i % 3)}}/", "Metadata": { "Weight": "{{i % 100 + 1}}" } }
            """));
        File.WriteAllText(path, $$"""
            { "ReverseProxy": {
                "Routes": { "all": { "ClusterId": "backends", "Match": { "Path": "{**catch-all}" } } },
                "Clusters": { "backends": { "LoadBalancingPolicy": "RoundRobin", "Destinations": { {{destinations}} } } } } }
            """);
        using var root = (ConfigurationRoot)new ConfigurationBuilder()
            .Add(new ValidatedJsonConfigurationSource(path, new ConfigReloadTracker(TimeProvider.System), TimeProvider.System))
            .Build();
        var view = new ProxyConfigurationView(root);
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddReverseProxy().LoadFromConfig(view);
        using var provider = services.BuildServiceProvider();
        var yarp = provider.GetServices<IProxyConfigProvider>().Single();
        Assert.Equal(1000, yarp.GetConfig().Clusters.Single().Destinations!.Count);

        // YARP reads the whole section again, as on a reload (the configuration's Reload() reads the file only when it changed).
        var bytes = Allocations.Fewest(() => root.Reload());

        // Each destination's config and metadata dictionary (about 350 bytes) and the sections YARP walks; a string per path
        // and per key name, as the whole configuration makes them, came to about 2,300 bytes a destination.
        Assert.True(bytes < 1000 * 1000, $"{bytes} bytes for 1,000 destinations");
        Assert.Equal(1000, yarp.GetConfig().Clusters.Single().Destinations!.Count);
    }

    [Fact]
    public void DestinationsReadBesideYarp_SameRoutesAndClustersAsYarpsOwnReadOfTheWholeConfiguration()
    {
        using var root = Root(new CountingSource(new Dictionary<string, string?> { ["Balancer:Management:Listen"] = "http://127.0.0.1:0" }));

        var fromFile = FileConfig(root).GetConfig();
        var fromWhole = YarpConfig(root.GetSection(ProxyConfigurationView.SectionName));

        Assert.Equal(fromWhole.Routes.OrderBy(r => r.RouteId), fromFile.Routes.OrderBy(r => r.RouteId));
        Assert.Equal(fromWhole.Clusters.OrderBy(c => c.ClusterId), fromFile.Clusters.OrderBy(c => c.ClusterId));
        var destinations = fromFile.Clusters.Single(c => c.ClusterId == "backends").Destinations!;
        Assert.Equal(["d1", "d10", "d2"], destinations.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(new Dictionary<string, string> { ["Weight"] = "5", ["zone"] = "a" }, destinations["d1"].Metadata);
        Assert.Equal("one.example", destinations["d1"].Host);
        Assert.Equal("http://127.0.0.1:6001/", destinations["d1"].Health);
        Assert.Null(destinations["d2"].Metadata);
        Assert.Equal("2", destinations["D10"].Metadata!["weight"]);
    }

    [Fact]
    public void DestinationsReadBesideYarp_AReloadKeepsTheUnchangedDestinationsConfigs_EqualWeightsShareOneMetadata()
    {
        var path = Path.Combine(_directory, "balancer.json");
        string File(string d2Weight) => $$"""
            { "ReverseProxy": {
                "Routes": { "all": { "ClusterId": "backends", "Match": { "Path": "{**catch-all}" } } },
                "Clusters": { "backends": { "Destinations": {
                  "d1": { "Address": "http://127.0.0.1:5001/", "Metadata": { "Weight": "3" } },
                  "d2": { "Address": "http://127.0.0.1:5002/", "Metadata": { "Weight": "{{d2Weight}}" } },
                  "d3": { "Address": "http://127.0.0.1:5003/" } } } } } }
            """;
        System.IO.File.WriteAllText(path, File("4"));
        using var root = (ConfigurationRoot)new ConfigurationBuilder()
            .Add(new ValidatedJsonConfigurationSource(path, new ConfigReloadTracker(TimeProvider.System), TimeProvider.System))
            .Build();
        var provider = FileConfig(root);
        var before = provider.GetConfig();
        var first = before.Clusters.Single().Destinations!;

        // d2's weight becomes d1's: read again as a reload does (the file's provider, then YARP's reader through the change token).
        System.IO.File.WriteAllText(path, File("3"));
        System.IO.File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddMinutes(1));
        root.Reload();
        var after = provider.GetConfig();
        var second = after.Clusters.Single().Destinations!;

        Assert.NotSame(before, after);
        Assert.Equal("3", second["d2"].Metadata!["Weight"]);
        Assert.Same(first["d1"], second["d1"]);
        Assert.Same(first["d3"], second["d3"]);
        Assert.NotSame(first["d2"], second["d2"]);
        Assert.Same(second["d1"].Metadata, second["d2"].Metadata);
        Assert.Same(provider.GetConfig(), after);
    }

    [Fact]
    public void DestinationsReadBesideYarp_AnotherSourceSetsAKeyUnderReverseProxy_YarpReadsTheDestinationsAndTheOverrideWins()
    {
        using var root = Root(new CountingSource(new Dictionary<string, string?>
        {
            ["ReverseProxy:Clusters:backends:Destinations:d2:Address"] = "http://127.0.0.1:7002/",
        }));

        var destinations = FileConfig(root).GetConfig().Clusters.Single(c => c.ClusterId == "backends").Destinations!;

        Assert.Equal("http://127.0.0.1:7002/", destinations["d2"].Address);
        Assert.Equal("http://127.0.0.1:5001/", destinations["d1"].Address);
        Assert.Equal(3, destinations.Count);
    }

    [Fact]
    public void AnotherSourceSetsAKeyUnderReverseProxy_ItsValueWins()
    {
        var overrides = new CountingSource(new Dictionary<string, string?>
        {
            ["ReverseProxy:Clusters:backends:Destinations:d2:Address"] = "http://127.0.0.1:7002/",
            ["ReverseProxy:Clusters:backends:Destinations:d3:Address"] = "http://127.0.0.1:7003/",
        });
        using var root = Root(overrides);

        var config = YarpConfig(new ProxyConfigurationView(root));

        var destinations = config.Clusters.Single(c => c.ClusterId == "backends").Destinations!;
        Assert.Equal("http://127.0.0.1:7002/", destinations["d2"].Address);
        Assert.Equal("http://127.0.0.1:7003/", destinations["d3"].Address);
        Assert.Equal("http://127.0.0.1:5001/", destinations["d1"].Address);
        Assert.Equal(4, destinations.Count);
    }

    /// <summary>The config file's validated source, then <paramref name="after"/> above it, as environment variables sit in the balancer.</summary>
    private ConfigurationRoot Root(IConfigurationSource after)
    {
        var path = Path.Combine(_directory, "balancer.json");
        File.WriteAllText(path, EveryKey);
        return (ConfigurationRoot)new ConfigurationBuilder()
            .Add(new ValidatedJsonConfigurationSource(path, new ConfigReloadTracker(TimeProvider.System), TimeProvider.System))
            .Add(after)
            .Build();
    }

    /// <summary>YARP's own reading of a configuration: the provider <c>LoadFromConfig</c> registers.</summary>
    private static IProxyConfig YarpConfig(IConfiguration section)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddReverseProxy().LoadFromConfig(section);
        using var provider = services.BuildServiceProvider();
        return provider.GetServices<IProxyConfigProvider>().Single().GetConfig();
    }

    /// <summary>The balancer's own provider: YARP's reader over the view, the file's destinations read beside it.</summary>
    private IProxyConfigProvider FileConfig(IConfigurationRoot root)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        ProxyConfigurationView.LoadFromConfigFile(services.AddReverseProxy(), root);
        var container = services.BuildServiceProvider();
        _containers.Add(container);
        return container.GetServices<IProxyConfigProvider>().Single();
    }

    /// <summary>An in-memory source that counts how often its provider is asked for a section's children.</summary>
    private sealed class CountingSource(Dictionary<string, string?> data) : IConfigurationSource
    {
        private readonly Counting _provider = new(data);

        public int ChildKeyCalls => _provider.Calls;

        public IConfigurationProvider Build(IConfigurationBuilder builder) => _provider;

        private sealed class Counting(Dictionary<string, string?> data) : MemoryConfigurationProvider(new MemoryConfigurationSource { InitialData = data })
        {
            public int Calls { get; private set; }

            public override IEnumerable<string> GetChildKeys(IEnumerable<string> earlierKeys, string? parentPath)
            {
                Calls++;
                return base.GetChildKeys(earlierKeys, parentPath);
            }
        }
    }
}
