using Balancer.Hosting;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;

namespace Balancer.Tests.Hosting;

[Collection(IntegrationCollection.Name)]
public sealed class InlineIoSchedulingTests
{
    [Fact]
    public async Task BuildingAndRunningAHost_LeavesTheProcessEnvironmentAlone()
    {
        // Inline completions are on by default; a host built inside another process (tests, tools) must not
        // turn them on for that process's other sockets and the children it starts.
        var before = Environment.GetEnvironmentVariable(InlineIoScheduling.RuntimeVariable);
        await using (var lb = await BalancerFixture.StartAsync())
        {
            Assert.NotEmpty(await lb.GetBackendAsync());
            Assert.Equal(before, Environment.GetEnvironmentVariable(InlineIoScheduling.RuntimeVariable));
        }

        Assert.Equal(before, Environment.GetEnvironmentVariable(InlineIoScheduling.RuntimeVariable));
    }
}
