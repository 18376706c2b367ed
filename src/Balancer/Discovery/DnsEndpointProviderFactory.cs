using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.ServiceDiscovery;

namespace Balancer.Discovery;

/// <summary>
/// Gives each DNS destination its <see cref="DnsEndpointProvider"/>. Only destinations marked for DNS discovery
/// reach service discovery (<see cref="DiscoveringDestinationResolver"/>), so every query here is one of them.
/// </summary>
internal sealed class DnsEndpointProviderFactory(DnsNames names) : IServiceEndpointProviderFactory
{
    public bool TryCreateProvider(ServiceEndpointQuery query, [NotNullWhen(true)] out IServiceEndpointProvider? provider)
    {
        // The query keeps the text it was made from, the destination's scheme://host:port: the port of every address.
        if (!Uri.TryCreate(query.ToString(), UriKind.Absolute, out var address))
        {
            provider = null;
            return false;
        }

        provider = new DnsEndpointProvider(names, address.IdnHost, address.Port);
        return true;
    }
}
