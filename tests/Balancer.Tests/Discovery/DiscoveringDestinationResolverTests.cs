using Balancer.Discovery;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.ServiceDiscovery;

namespace Balancer.Tests.Discovery;

/// <summary>Destinations not marked for discovery pass through the resolver as written.</summary>
[Trait("Category", "Unit")]
public sealed class DiscoveringDestinationResolverTests
{
    [Fact]
    public async Task NoDestinationDiscovered_TheClustersOwnDestinationsAreReturned_DiscoveryNotAsked()
    {
        var discovery = new CountingResolver();
        var destinations = new Dictionary<string, DestinationConfig>(StringComparer.OrdinalIgnoreCase)
        {
            ["a"] = new() { Address = "http://127.0.0.1:5001/", Metadata = new Dictionary<string, string> { ["Weight"] = "3" } },
            ["b"] = new() { Address = "http://127.0.0.1:5002/" },
        };

        var resolved = await new DiscoveringDestinationResolver(discovery).ResolveDestinationsAsync(destinations, CancellationToken.None);

        // The very table: a reload of thousands of destinations makes no copy of it.
        Assert.Same(destinations, resolved.Destinations);
        Assert.Null(resolved.ChangeToken);
        Assert.Equal(0, discovery.Calls);
    }

    [Fact]
    public async Task OneDestinationDiscovered_OnlyItGoesToDiscovery_TheOthersKeptAsWritten()
    {
        var discovery = new CountingResolver();
        var kept = new DestinationConfig { Address = "http://127.0.0.1:5001/" };
        var named = new DestinationConfig { Address = "http://backend.example:5002/", Metadata = new Dictionary<string, string> { ["Discovery"] = "Dns" } };
        var destinations = new Dictionary<string, DestinationConfig>(StringComparer.OrdinalIgnoreCase) { ["a"] = kept, ["named"] = named };

        var resolved = await new DiscoveringDestinationResolver(discovery).ResolveDestinationsAsync(destinations, CancellationToken.None);

        Assert.Equal(1, discovery.Calls);
        Assert.Equal(["named"], discovery.Asked);
        Assert.Equal(["a", "named[10.0.0.1:5002]"], resolved.Destinations.Keys.Order(StringComparer.Ordinal));
        Assert.Same(kept, resolved.Destinations["a"]);
    }

    /// <summary>Stands in for service discovery: each destination it is given becomes one at 10.0.0.1.</summary>
    private sealed class CountingResolver : IDestinationResolver
    {
        public int Calls { get; private set; }

        public List<string> Asked { get; } = [];

        public ValueTask<ResolvedDestinationCollection> ResolveDestinationsAsync(IReadOnlyDictionary<string, DestinationConfig> destinations, CancellationToken cancellationToken)
        {
            Calls++;
            Asked.AddRange(destinations.Keys);
            var found = destinations.ToDictionary(d => $"{d.Key}[10.0.0.1:5002]", d => d.Value with { Address = "http://10.0.0.1:5002/" });
            return ValueTask.FromResult(new ResolvedDestinationCollection(found, null));
        }
    }
}
