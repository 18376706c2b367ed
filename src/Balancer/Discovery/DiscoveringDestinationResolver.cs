using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.ServiceDiscovery;

namespace Balancer.Discovery;

/// <summary>
/// Sends the destinations marked <c>"Discovery": "Dns"</c> through service discovery (Microsoft.Extensions.ServiceDiscovery's
/// YARP resolver, <paramref name="discovery"/>) and keeps every other destination exactly as written: its id,
/// address and state stay what they were before discovery existed.
/// </summary>
internal sealed class DiscoveringDestinationResolver(IDestinationResolver discovery) : IDestinationResolver
{
    public const string MetadataKey = "Discovery";
    public const string Dns = "Dns";

    public static bool IsDiscovered(DestinationConfig destination) =>
        destination.Metadata?.TryGetValue(MetadataKey, out var value) == true && string.Equals(value, Dns, StringComparison.OrdinalIgnoreCase);

    public async ValueTask<ResolvedDestinationCollection> ResolveDestinationsAsync(IReadOnlyDictionary<string, DestinationConfig> destinations, CancellationToken cancellationToken)
    {
        Dictionary<string, DestinationConfig>? discovered = null;
        foreach (var (id, destination) in destinations)
        {
            if (IsDiscovered(destination))
            {
                (discovered ??= new(StringComparer.OrdinalIgnoreCase))[id] = destination;
            }
        }

        if (discovered is null)
        {
            // The cluster's own destinations, as YARP keeps them without a resolver: a copy would be one more table of
            // every destination (10,000 entries at 10,000) made on every reload and kept until the next.
            return new ResolvedDestinationCollection(destinations, null);
        }

        var resolved = new Dictionary<string, DestinationConfig>(StringComparer.OrdinalIgnoreCase);
        foreach (var (id, destination) in destinations)
        {
            if (!discovered.ContainsKey(id))
            {
                resolved[id] = destination;
            }
        }

        // Named "<id>[<address>:<port>]", with the Host header of the name and the metadata (weight) of the entry.
        var found = await discovery.ResolveDestinationsAsync(discovered, cancellationToken);
        foreach (var (id, destination) in found.Destinations)
        {
            resolved[id] = destination;
        }

        return new ResolvedDestinationCollection(resolved, found.ChangeToken);
    }
}
