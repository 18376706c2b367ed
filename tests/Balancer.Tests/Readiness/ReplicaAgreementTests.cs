using System.Net;
using Balancer.Hosting;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;

namespace Balancer.Tests.Readiness;

/// <summary>Two replicas with the same config: IpHash stickiness survives a failover from one to the other.</summary>
[Collection(FunctionalCollection.Name)]
public sealed class ReplicaAgreementTests
{
    [Fact]
    public async Task IpHash_TwoBalancersSameConfig_200ClientAddresses_EachLandsOnTheSameBackendThroughBoth()
    {
        await using var first = await BalancerFixture.StartAsync("IpHash");
        await using var second = BalancerHost.Create(first.ConfigPath, [], b => b.Logging.ClearProviders());
        await second.StartAsync();
        var secondProxy = second.Services.GetRequiredService<Listeners>().ProxyAddress;

        var seen = new Dictionary<string, int>();
        for (var i = 0; i < 200; i++)
        {
            var source = new IPAddress([127, 0, (byte)(2 + (i / 100)), (byte)(1 + (i % 100))]);
            using var client = new SourceAddressClient(source);

            var viaFirst = await client.GetBackendAsync(first.ProxyAddress);
            var viaSecond = await client.GetBackendAsync(secondProxy);

            Assert.True(viaFirst == viaSecond, $"{source}: {viaFirst} through one balancer, {viaSecond} through the other");
            seen[viaFirst] = seen.GetValueOrDefault(viaFirst) + 1;
        }

        // The agreement means something only if the addresses spread over every backend.
        Assert.Equal(["A", "B", "C"], seen.Keys.Order(StringComparer.Ordinal));
    }
}
