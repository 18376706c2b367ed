using System.Net;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;

namespace Balancer.Tests.Backends;

/// <summary>
/// The sample backend's fault injection is reachable only on its own admin listener: through the balancer
/// (which forwards to the workload port) every <c>/admin</c> path is a 404 and changes nothing.
/// </summary>
[Collection(FunctionalCollection.Name)]
public sealed class AdminListenerTests
{
    [Theory]
    [InlineData("/admin/delay?ms=5000")]
    [InlineData("/admin/unhealthy")]
    [InlineData("/admin/fail?status=500")]
    public async Task FaultInjection_ThroughTheProxy_Is404_AndChangesNothing(string path)
    {
        await using var lb = await BalancerFixture.StartAsync(backendAdmin: true);

        for (var i = 0; i < 3; i++)
        {
            var answer = await RawHttp.ExchangeAsync(lb.ProxyAddress, $"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            Assert.StartsWith("HTTP/1.1 404 Not Found\r\n", answer, StringComparison.Ordinal);
        }

        Assert.All(lb.Backends, b =>
        {
            Assert.True(b.State.Healthy);
            Assert.Equal(0, b.State.DelayMs);
            Assert.Equal(0, b.State.FailStatus);
        });
        using var stats = await lb.Client.GetAsync("/admin/stats");
        Assert.Equal(HttpStatusCode.NotFound, stats.StatusCode);
    }

    [Fact]
    public async Task FaultInjection_OnTheAdminListener_Works()
    {
        await using var backend = await BackendHost.StartAsync("A", admin: true);
        using var http = new HttpClient();

        using var onWorkloadPort = await http.PostAsync(new Uri(backend.Address, "/admin/unhealthy"), null);
        Assert.Equal(HttpStatusCode.NotFound, onWorkloadPort.StatusCode);
        Assert.True(backend.State.Healthy);

        using var onAdminPort = await http.PostAsync(new Uri(backend.AdminAddress!, "/admin/unhealthy"), null);
        Assert.Equal(HttpStatusCode.OK, onAdminPort.StatusCode);
        Assert.False(backend.State.Healthy);
        using var health = await http.GetAsync(new Uri(backend.Address, "/health"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
    }

    [Fact]
    public async Task AdminAndGrpcUrlsTogether_EachListenerServesItsOwn()
    {
        await using var backend = await BackendHost.StartAsync("A", admin: true, grpc: true);
        Assert.Equal(3, new[] { backend.Address.Port, backend.AdminAddress!.Port, backend.GrpcAddress!.Port }.Distinct().Count());
        using var http = new HttpClient();

        using var onWorkloadPort = await http.PostAsync(new Uri(backend.Address, "/admin/delay?ms=100"), null);
        Assert.Equal(HttpStatusCode.NotFound, onWorkloadPort.StatusCode);
        using var onAdminPort = await http.PostAsync(new Uri(backend.AdminAddress, "/admin/delay?ms=100"), null);
        Assert.Equal(HttpStatusCode.OK, onAdminPort.StatusCode);
        Assert.Equal(100, backend.State.DelayMs);

        using var channel = global::Grpc.Net.Client.GrpcChannel.ForAddress(backend.GrpcAddress);
        var reply = await new SampleBackend.Rpc.Greeter.GreeterClient(channel).SayHelloAsync(new SampleBackend.Rpc.HelloRequest { Name = "both" });
        Assert.Equal("A", reply.Backend);
    }

    [Fact]
    public async Task WithoutAdminUrls_AdminIsNotServedAtAll()
    {
        await using var backend = await BackendHost.StartAsync("A");
        using var http = new HttpClient();

        using var response = await http.PostAsync(new Uri(backend.Address, "/admin/delay?ms=100"), null);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal(0, backend.State.DelayMs);
    }
}
