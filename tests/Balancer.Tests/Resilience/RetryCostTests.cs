using System.Net;
using System.Text.Json.Nodes;
using Balancer.LoadBalancing;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.LoadBalancing;

namespace Balancer.Tests.Resilience;

/// <summary>
/// What a retry leaves behind, over real sockets: the policy's cached set of the cluster, and the byte counts
/// of each destination tried.
/// </summary>
[Collection(FunctionalCollection.Name)]
public sealed class RetryCostTests
{
    [Fact]
    public async Task RetriedRequests_LeaveThePolicysCachedClusterSetTheSameInstance()
    {
        // Passive checks off: B keeps being picked, so request after request is retried off it.
        await using var lb = await BalancerFixture.StartAsync("RoundRobin", config =>
            config["ReverseProxy"]!["Clusters"]!["backends"]!["HealthCheck"] = new JsonObject { ["Passive"] = new JsonObject { ["Enabled"] = false } });
        var policy = lb.App.Services.GetServices<ILoadBalancingPolicy>().OfType<RoundRobinPolicy>().Single();
        Assert.True(lb.App.Services.GetRequiredService<IProxyStateLookup>().TryGetCluster("backends", out var cluster));
        await lb.Backend("B").KillAsync();

        Assert.NotEqual("B", await lb.GetBackendAsync());
        var cached = policy.Clusters.CachedSet(cluster);
        Assert.NotNull(cached);
        var served = new List<string>();
        for (var i = 0; i < 9; i++)
        {
            served.Add(await lb.GetBackendAsync());
        }

        var samples = await lb.MetricsAsync();
        var retries = samples.Value("balancer_retries_total", ("destination", "B"), ("reason", "refused"));
        Assert.DoesNotContain("B", served);
        Assert.InRange(retries, 3, 9);
        Assert.Equal(retries, samples.Value("balancer_destination_requests_total", ("destination", "B"), ("code", "error")));
        Assert.Same(cached, policy.Clusters.CachedSet(cluster));
        Assert.Equal(["A", "B", "C"], cached.Destinations.ToArray().Select(d => d.DestinationId).Order());
    }

    /// <summary>
    /// Declared length or chunked; below the replay buffer's default (64 KiB) a declared body is buffered before
    /// forwarding, above it, it streams. B refuses the one request sent to it, which is retried elsewhere.
    /// </summary>
    [Theory]
    [InlineData(30_000, false)]
    [InlineData(30_000, true)]
    [InlineData(200_000, false)]
    public async Task Upload_RetriedOffARefusingBackend_CountsItsBodyOnlyWhereItWasSent(int size, bool chunked)
    {
        await using var lb = await BalancerFixture.StartAsync("RoundRobin");
        await lb.Backend("B").KillAsync();
        var data = new byte[size];
        new Random(11).NextBytes(data);
        using var form = new MultipartFormDataContent { { new ByteArrayContent(data), "file", "data.bin" } };
        var body = await form.ReadAsByteArrayAsync();

        for (var i = 0; i < 3; i++)
        {
            HttpContent content = chunked ? new ChunkedContent(body) : new ByteArrayContent(body);
            content.Headers.ContentType = form.Headers.ContentType;
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/upload") { Content = content };
            using var response = await lb.Client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.NotEqual("B", response.Headers.GetValues("X-Backend").Single());
            Assert.Equal(data.Length, (long)JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsArray().Single()!["size"]!);
        }

        var samples = await lb.MetricsAsync();
        Assert.Equal(1, samples.Value("balancer_retries_total", ("destination", "B"), ("reason", "refused")));
        Assert.Equal(0, samples.Value("balancer_destination_request_bytes_total", ("destination", "B")));
        Assert.Equal(
            3 * body.Length,
            samples.Value("balancer_destination_request_bytes_total", ("destination", "A")) + samples.Value("balancer_destination_request_bytes_total", ("destination", "C")));
    }

    /// <summary>A body of no declared length, so HTTP/1.1 sends it chunked.</summary>
    private sealed class ChunkedContent(byte[] body) : HttpContent
    {
        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => stream.WriteAsync(body).AsTask();

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
