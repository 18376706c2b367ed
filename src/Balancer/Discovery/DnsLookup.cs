using System.Net;
using DnsClient;
using DnsClient.Protocol;
using Microsoft.Extensions.Options;

namespace Balancer.Discovery;

/// <summary>
/// A and AAAA queries through DnsClient, to the servers of <c>Balancer:Discovery:NameServers</c> or of
/// <c>/etc/resolv.conf</c>, without a cache: every refresh asks the server, so a changed record is seen at the
/// next refresh whatever its TTL.
/// </summary>
internal sealed class DnsLookup
{
    private readonly LookupClient _client;

    public DnsLookup(IOptions<Configuration.BalancerOptions> options)
    {
        var discovery = options.Value.Discovery;
        var servers = discovery.NameServers.Select(s => NameServer.TryParse(s, out var server) ? server : null).OfType<IPEndPoint>().ToArray();
        var settings = servers.Length > 0 ? new LookupClientOptions(servers) : new LookupClientOptions();
        settings.UseCache = false;
        settings.Timeout = discovery.Timeout;
        settings.Retries = 1;
        settings.ThrowDnsErrors = false;
        settings.ContinueOnDnsError = false;
        _client = new LookupClient(settings);
    }

    /// <summary>
    /// Every address of <paramref name="host"/>, in a fixed order; empty when the name does not exist. Throws
    /// <see cref="DnsLookupException"/> when the servers do not answer or answer with an error.
    /// </summary>
    public async Task<IReadOnlyList<IPAddress>> AddressesAsync(string host, CancellationToken cancellationToken)
    {
        var answers = await Task.WhenAll(QueryAsync(host, QueryType.A, cancellationToken), QueryAsync(host, QueryType.AAAA, cancellationToken));
        return [.. answers.SelectMany(a => a).Distinct().OrderBy(a => a.AddressFamily).ThenBy(a => a.ToString(), StringComparer.Ordinal)];
    }

    private async Task<IEnumerable<IPAddress>> QueryAsync(string host, QueryType type, CancellationToken cancellationToken)
    {
        IDnsQueryResponse response;
        try
        {
            response = await _client.QueryAsync(host, type, QueryClass.IN, cancellationToken);
        }
        catch (DnsResponseException e)
        {
            throw new DnsLookupException($"{type} {host}: {e.Message}", e);
        }

        if (response.HasError)
        {
            // A name that does not exist has no addresses; any other error says nothing about the name.
            return response.Header.ResponseCode == DnsHeaderResponseCode.NotExistentDomain
                ? []
                : throw new DnsLookupException($"{type} {host}: {response.ErrorMessage} from {response.NameServer}");
        }

        return response.Answers.OfType<AddressRecord>().Select(r => r.Address);
    }
}

/// <summary>A lookup that got no usable answer: the addresses it would replace stay in use.</summary>
internal sealed class DnsLookupException(string message, Exception? inner = null) : Exception(message, inner);
