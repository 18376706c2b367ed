using System.Net;
using Microsoft.Extensions.ServiceDiscovery;

namespace Balancer.Discovery;

/// <summary>
/// The endpoints of one DNS destination for Microsoft.Extensions.ServiceDiscovery: each address of the name
/// (<see cref="DnsNames"/>) on the port of the destination's address, with the token that fires when they change.
/// </summary>
internal sealed class DnsEndpointProvider(DnsNames names, string host, int port) : IServiceEndpointProvider
{
    public async ValueTask PopulateAsync(IServiceEndpointBuilder endpoints, CancellationToken cancellationToken)
    {
        var (addresses, changed) = await names.CurrentAsync(host, cancellationToken);
        foreach (var address in addresses)
        {
            endpoints.Endpoints.Add(ServiceEndpoint.Create(new IPEndPoint(address, port)));
        }

        endpoints.AddChangeToken(changed);
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
