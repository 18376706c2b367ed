using System.Net;
using System.Text.Json.Nodes;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;

namespace Balancer.Tests.LoadBalancing;

/// <summary>
/// IpHash and X-Forwarded-For over real connections from distinct loopback addresses: the header decides
/// only when the TCP peer is a trusted proxy, so a client cannot pick its destination by forging it.
/// </summary>
[Collection(FunctionalCollection.Name)]
public sealed class ForwardedForTrustTests
{
    private const string Proxy = "127.0.6.1";
    private static readonly IPAddress[] Clients = [.. Enumerable.Range(1, 24).Select(i => IPAddress.Parse($"127.0.5.{i}"))];

    [Fact]
    public async Task UntrustedPeer_ForgedHeader_LandsWhereItsRealAddressHashes()
    {
        await using var lb = await BalancerFixture.StartAsync("IpHash", Trust(Proxy));
        var owners = await OwnersAsync(lb);
        var forgedCases = 0;

        foreach (var client in Clients)
        {
            // A forged address that hashes elsewhere, so obeying the header would show.
            var forged = Clients.First(c => owners[c] != owners[client]);
            using var http = new SourceAddressClient(client);

            var landed = await http.GetBackendAsync(lb.ProxyAddress, [new("X-Forwarded-For", forged.ToString())]);

            Assert.Equal(owners[client], landed);
            forgedCases++;
        }

        Assert.Equal(Clients.Length, forgedCases);
    }

    [Fact]
    public async Task TrustedPeer_LandsWhereTheHeaderHashes_OnlyAfterTheReloadThatTrustsIt()
    {
        await using var lb = await BalancerFixture.StartAsync("IpHash");
        var owners = await OwnersAsync(lb);
        using var proxy = new SourceAddressClient(IPAddress.Parse(Proxy));
        var proxyOwner = await proxy.GetBackendAsync(lb.ProxyAddress);

        // Not trusted yet: the header is ignored, every request lands where the proxy's own address hashes.
        foreach (var client in Clients)
        {
            Assert.Equal(proxyOwner, await proxy.GetBackendAsync(lb.ProxyAddress, [new("X-Forwarded-For", client.ToString())]));
        }

        lb.WriteConfig("IpHash", Trust("127.0.6.0/29"));
        await Poll.UntilAsync(
            async () => await proxy.GetBackendAsync(lb.ProxyAddress, [new("X-Forwarded-For", Clients.First(c => owners[c] != proxyOwner).ToString())]) != proxyOwner,
            TimeSpan.FromSeconds(10),
            "the reloaded TrustedProxies to apply");

        foreach (var client in Clients)
        {
            var other = Clients.First(c => owners[c] != owners[client]);
            // The client's address as the trusted proxy appended it.
            Assert.Equal(owners[client], await proxy.GetBackendAsync(lb.ProxyAddress, [new("X-Forwarded-For", client.ToString())]));
            // Through a second trusted hop (127.0.6.2 is in the range too), still the client.
            Assert.Equal(owners[client], await proxy.GetBackendAsync(lb.ProxyAddress, [new("X-Forwarded-For", $"{client}, 127.0.6.2")]));
            // A client that sends its own forged entry to the proxy: the proxy appends the real address after
            // it, and only the rightmost untrusted entry counts.
            Assert.Equal(owners[client], await proxy.GetBackendAsync(lb.ProxyAddress, [new("X-Forwarded-For", $"{other}, {client}")]));
        }
    }

    /// <summary>Where each client address lands when it connects directly, without any header.</summary>
    private static async Task<Dictionary<IPAddress, string>> OwnersAsync(BalancerFixture lb)
    {
        var owners = new Dictionary<IPAddress, string>();
        foreach (var client in Clients)
        {
            using var http = new SourceAddressClient(client);
            owners[client] = await http.GetBackendAsync(lb.ProxyAddress);
        }

        Assert.Equal(["A", "B", "C"], owners.Values.Distinct().Order());
        return owners;
    }

    private static Action<JsonObject> Trust(string network) =>
        config => config["Balancer"]!["TrustedProxies"] = new JsonArray(network);
}
