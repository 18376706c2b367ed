using Balancer.Configuration;
using Microsoft.Extensions.Configuration;

namespace Balancer.Tests.Discovery;

/// <summary>The keys of DNS discovery: each bad value rejected under its own key, the existing forms untouched.</summary>
[Trait("Category", "Unit")]
public sealed class DiscoveryConfigTests
{
    [Fact]
    public void DnsDestination_WithNameServersAndRefresh_IsValid()
    {
        Assert.Empty(ConfigValidator.Validate(Config(new()
        {
            ["Balancer:Discovery:RefreshPeriod"] = "00:00:05",
            ["Balancer:Discovery:Timeout"] = "00:00:01",
            ["Balancer:Discovery:NameServers:0"] = "10.0.0.2",
            ["Balancer:Discovery:NameServers:1"] = "127.0.0.1:5353",
            ["Balancer:Discovery:NameServers:2"] = "[::1]:53",
            ["ReverseProxy:Clusters:c:Destinations:web:Address"] = "http://backends.internal:5001/",
            ["ReverseProxy:Clusters:c:Destinations:web:Metadata:Discovery"] = "dns",
            ["ReverseProxy:Clusters:c:Destinations:web:Metadata:Weight"] = "3",
        })));
    }

    [Fact]
    public void BadDiscoveryValues_EachRejectedNamingItsKey()
    {
        var errors = ConfigValidator.Validate(Config(new()
        {
            ["Balancer:Discovery:RefreshPeriod"] = "00:00:00",
            ["Balancer:Discovery:NameServers:0"] = "10.0.0.2",
            ["Balancer:Discovery:NameServers:1"] = "dns.example",
            ["ReverseProxy:Clusters:c:Destinations:web:Address"] = "http://backends.internal:5001/",
            ["ReverseProxy:Clusters:c:Destinations:web:Metadata:Discovery"] = "Srv",
            ["ReverseProxy:Clusters:c:Destinations:ip:Address"] = "http://10.0.0.7:5001/",
            ["ReverseProxy:Clusters:c:Destinations:ip:Metadata:Discovery"] = "Dns",
        }));

        Assert.Equal(
        [
            "Balancer:Discovery:NameServers:1: 'dns.example' is not an IP address or address:port",
            "Balancer:Discovery:RefreshPeriod: must be positive, not '00:00:00'",
            "ReverseProxy:Clusters:c:Destinations:ip:Address: discovery by DNS needs a host name to look up, not '10.0.0.7'",
            "ReverseProxy:Clusters:c:Destinations:web:Metadata:Discovery: unknown discovery 'Srv'; use one of Dns",
        ], errors.Order(StringComparer.Ordinal));
    }

    private static IConfiguration Config(Dictionary<string, string?> values)
    {
        values["ReverseProxy:Routes:all:ClusterId"] = "c";
        values["ReverseProxy:Routes:all:Match:Path"] = "{**catch-all}";
        return new ConfigurationBuilder().AddInMemoryCollection(values).Build();
    }
}
