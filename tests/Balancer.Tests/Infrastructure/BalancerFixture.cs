using System.Text.Json.Nodes;
using Balancer.Hosting;

namespace Balancer.Tests.Infrastructure;

/// <summary>
/// Three real SampleBackends (A, B, C) and a real balancer in front of them, all on loopback ports chosen
/// by the OS, with the config in a temporary file that tests may rewrite to trigger a reload.
/// </summary>
internal sealed class BalancerFixture : IAsyncDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("balancer-test-").FullName;
    private WebApplication? _balancer;

    public List<BackendHost> Backends { get; } = [];

    public string ConfigPath => Path.Combine(_directory, "balancer.json");

    public WebApplication App => _balancer!;

    public Uri ProxyAddress => App.Services.GetRequiredService<Listeners>().ProxyAddress;

    public Uri ManagementAddress => App.Services.GetRequiredService<Listeners>().ManagementAddress;

    /// <summary>The first proxy listener of a scheme (<c>https</c>, <c>h2c</c>, <c>http</c>).</summary>
    public Uri ListenerOf(string scheme) => App.Services.GetRequiredService<Listeners>().ProxyAddressOf(scheme)
        ?? throw new InvalidOperationException($"No {scheme} listener is configured.");

    public HttpClient Client { get; private set; } = null!;

    public HttpClient Management { get; private set; } = null!;

    public static async Task<BalancerFixture> StartAsync(
        string policy = "RoundRobin",
        Action<JsonObject>? edit = null,
        Action<WebApplicationBuilder>? configure = null,
        Action<WebApplicationBuilder>? configureBackends = null,
        bool backendAdmin = false,
        bool grpc = false)
    {
        var fixture = new BalancerFixture();
        foreach (var name in new[] { "A", "B", "C" })
        {
            fixture.Backends.Add(await BackendHost.StartAsync(name, configure: configureBackends, admin: backendAdmin, grpc: grpc));
        }

        fixture.WriteConfig(policy, edit);
        fixture._balancer = BalancerHost.Create(fixture.ConfigPath, [], builder =>
        {
            builder.Logging.ClearProviders();
            configure?.Invoke(builder);
        });
        await fixture._balancer.StartAsync();
        fixture.Client = new HttpClient { BaseAddress = fixture.ProxyAddress };
        fixture.Management = new HttpClient { BaseAddress = fixture.ManagementAddress };
        return fixture;
    }

    public BackendHost Backend(string name) => Backends.Single(b => b.Name == name);

    /// <summary>The config as a JSON tree, for tests to edit before <see cref="WriteConfig(JsonObject)"/>.</summary>
    public JsonObject Config(string policy, Action<JsonObject>? edit = null)
    {
        var destinations = new JsonObject();
        foreach (var backend in Backends)
        {
            destinations[backend.Name] = new JsonObject { ["Address"] = backend.Address.ToString() };
        }

        var config = new JsonObject
        {
            ["Balancer"] = new JsonObject
            {
                ["Listen"] = "http://127.0.0.1:0",
                ["Management"] = new JsonObject { ["Listen"] = "http://127.0.0.1:0" },
            },
            ["ReverseProxy"] = new JsonObject
            {
                ["Routes"] = new JsonObject
                {
                    ["all"] = new JsonObject { ["ClusterId"] = "backends", ["Match"] = new JsonObject { ["Path"] = "{**catch-all}" } },
                },
                ["Clusters"] = new JsonObject
                {
                    ["backends"] = new JsonObject
                    {
                        ["LoadBalancingPolicy"] = policy,
                        ["Destinations"] = destinations,
                    },
                },
            },
        };
        if (Backends.All(b => b.GrpcAddress is not null))
        {
            AddGrpcCluster(config);
        }

        edit?.Invoke(config);
        return config;
    }

    /// <summary>The backends' gRPC ports as a second cluster, routed by the services' path prefixes, as in the shipped config.</summary>
    private void AddGrpcCluster(JsonObject config)
    {
        var destinations = new JsonObject();
        foreach (var backend in Backends)
        {
            destinations[backend.Name] = new JsonObject { ["Address"] = backend.GrpcAddress!.ToString() };
        }

        var proxy = config["ReverseProxy"]!;
        var routes = proxy["Routes"]!.AsObject();
        foreach (var (id, service) in new[] { ("grpc-greeter", "sample.v1.Greeter"), ("grpc-counter", "sample.v1.Counter"), ("grpc-health", "grpc.health.v1.Health") })
        {
            routes[id] = new JsonObject { ["ClusterId"] = "grpc", ["Match"] = new JsonObject { ["Path"] = $"/{service}/{{**method}}" } };
        }

        proxy["Clusters"]!["grpc"] = new JsonObject
        {
            ["LoadBalancingPolicy"] = (string?)proxy["Clusters"]!["backends"]!["LoadBalancingPolicy"],
            ["HttpRequest"] = new JsonObject { ["Version"] = "2", ["VersionPolicy"] = "RequestVersionExact" },
            ["Destinations"] = destinations,
        };
    }

    public void WriteConfig(string policy, Action<JsonObject>? edit = null) => WriteConfig(Config(policy, edit));

    /// <summary>Replaces the file in one step (write aside, then rename), as careful tools do.</summary>
    public void WriteConfig(JsonObject config) => WriteConfigText(config.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));

    public void WriteConfigText(string text)
    {
        var temporary = ConfigPath + ".tmp";
        File.WriteAllText(temporary, text);
        File.Move(temporary, ConfigPath, overwrite: true);
    }

    public async Task<string> GetBackendAsync(string path = "/")
    {
        using var response = await Client.GetAsync(path);
        response.EnsureSuccessStatusCode();
        return response.Headers.GetValues("X-Backend").Single();
    }

    public async Task<JsonNode> StatusAsync() => JsonNode.Parse(await Management.GetStringAsync("/status"))!;

    public async Task<List<PrometheusText.Sample>> MetricsAsync() => PrometheusText.Parse(await Management.GetStringAsync("/metrics"));

    /// <summary>
    /// Sends <paramref name="requests"/> sequential GETs on a client of its own (so background traffic does
    /// not interleave) and counts them by the X-Backend that answered; every one must be a 200.
    /// </summary>
    public async Task<Dictionary<string, int>> CountBackendsAsync(int requests)
    {
        using var client = new HttpClient { BaseAddress = ProxyAddress };
        var counts = new Dictionary<string, int>();
        for (var i = 0; i < requests; i++)
        {
            using var response = await client.GetAsync("/");
            Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
            var backend = response.Headers.GetValues("X-Backend").Single();
            counts[backend] = counts.GetValueOrDefault(backend) + 1;
        }

        return counts;
    }

    /// <summary>The counts of <see cref="CountBackendsAsync"/>, smallest first, without the names.</summary>
    public async Task<int[]> CountsAsync(int requests) => [.. (await CountBackendsAsync(requests)).Values.Order()];

    public async ValueTask DisposeAsync()
    {
        Client?.Dispose();
        Management?.Dispose();
        if (_balancer is not null)
        {
            await _balancer.StopAsync();
            await _balancer.DisposeAsync();
        }

        foreach (var backend in Backends)
        {
            await backend.DisposeAsync();
        }

        Directory.Delete(_directory, recursive: true);
    }
}
