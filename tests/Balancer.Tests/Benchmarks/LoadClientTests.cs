using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;
using Bench.Load;

namespace Balancer.Tests.Benchmarks;

[Collection(IntegrationCollection.Name)]
public sealed class LoadClientTests
{
    [Fact]
    public async Task Run_FixedCount_SendsExactlyThatManyAndCountsTheBackend()
    {
        await using var backend = await BackendHost.StartAsync("A");
        using var client = new LoadClient(backend.Address);

        var result = await client.RunAsync(new LoadPlan("/", Requests: 250, Concurrency: 4));

        Assert.Equal(250, result.Sent);
        Assert.Equal(0, result.Failed);
        Assert.Equal(new Dictionary<string, int> { ["A"] = 250 }, result.ByBackend);
        Assert.Equal(250, result.Latency!.Count);
        Assert.Equal(250, backend.State.Served);
        Assert.True(result.ResponseBytes >= 250 * "{\"backend\":\"A\"".Length);
    }

    [Fact]
    public async Task Run_ThroughIpHashBalancer_ManySourceAddressesReachEveryBackend()
    {
        await using var lb = await BalancerFixture.StartAsync("IpHash");
        using var client = new LoadClient(lb.ProxyAddress, sources: 60);

        var result = await client.RunAsync(new LoadPlan("/", Requests: 600, Concurrency: 1));

        // With one address IpHash would send all 600 to one backend; 60 addresses spread over all three.
        Assert.Equal(0, result.Failed);
        Assert.Equal(["A", "B", "C"], result.ByBackend.Keys);
        Assert.Equal(600, result.ByBackend.Values.Sum());
        Assert.Equal(600, lb.Backends.Sum(b => b.State.Served));
    }

    [Fact]
    public async Task Run_DurationBound_StopsSendingAtTheDeadline()
    {
        await using var backend = await BackendHost.StartAsync("A");
        using var client = new LoadClient(backend.Address);

        var result = await client.RunAsync(new LoadPlan("/delay/50", Requests: 1_000_000, Concurrency: 2, Duration: TimeSpan.FromMilliseconds(500)));

        // Two clients, 50 ms per request, half a second: about 20 requests, never the million asked for;
        // every request counted was answered (the deadline stops new sends, it does not cut answers off).
        Assert.InRange(result.Sent, 2, 22);
        Assert.Equal(0, result.Failed);
        Assert.Equal(result.Sent, result.Latency!.Count);
        // .NET timers may fire a couple of milliseconds early; the latency still covers the backend's wait.
        Assert.True(result.Latency.Min >= 45, $"min latency {result.Latency.Min} ms is well below the backend's 50 ms delay");
    }

    [Fact]
    public async Task Run_Paced_TakesAtLeastTheScheduledTime()
    {
        await using var backend = await BackendHost.StartAsync("A");
        using var client = new LoadClient(backend.Address);

        var result = await client.RunAsync(new LoadPlan("/", Requests: 50, Concurrency: 4, RatePerSecond: 100));

        // Request 49 is due 0.49 s after the start (timers may fire a few milliseconds early); unpaced,
        // 50 requests to a local backend take a few tens of milliseconds.
        Assert.Equal(50, result.Sent);
        Assert.True(result.Seconds >= 0.45, $"50 requests at 100/s took only {result.Seconds} s");
    }

    [Fact]
    public async Task Run_BackendDown_CountsEveryRequestAsFailed()
    {
        var backend = await BackendHost.StartAsync("A");
        var address = backend.Address;
        await backend.StopAsync();
        using var client = new LoadClient(address);

        var result = await client.RunAsync(new LoadPlan("/", Requests: 5, Concurrency: 1));

        Assert.Equal(5, result.Sent);
        Assert.Equal(5, result.Failed);
        Assert.Equal(100, result.FailedPercent);
        Assert.Empty(result.ByBackend);
    }
}
