using System.Collections.Concurrent;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;
using Microsoft.AspNetCore.Hosting;
using static Balancer.Tests.Grpc.GrpcTestConfig;

namespace Balancer.Tests.Grpc;

/// <summary>Active health checks of a gRPC cluster by the standard gRPC health protocol, against real backends.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class GrpcHealthProbeTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task GrpcProbes_CallHealthCheck_NotServingGoesDown_ServingComesBack()
    {
        var seen = new SeenRequests();
        await using var lb = await BalancerFixture.StartAsync(edit: GrpcHealthChecks(), configureBackends: seen.Install, grpc: true);
        foreach (var name in new[] { "A", "B", "C" })
        {
            await WaitForHealthAsync(lb, name, "Up", Limit);
        }

        lb.Backend("B").State.Healthy = false;
        await WaitForHealthAsync(lb, "B", "Down", Limit);
        Assert.Equal("Up", await HealthAsync(lb, "A"));
        lb.Backend("B").State.Healthy = true;
        await WaitForHealthAsync(lb, "B", "Up", Limit);

        // The probes were gRPC calls on the gRPC port; nothing probed /health.
        var probes = seen.All().Where(r => r.Port == lb.Backend("B").GrpcAddress!.Port).ToList();
        Assert.NotEmpty(probes);
        Assert.All(probes, p => Assert.Equal(("POST", "/grpc.health.v1.Health/Check", "application/grpc", "HTTP/2"), (p.Method, p.Path, p.ContentType, p.Protocol)));
        Assert.DoesNotContain(seen.All(), r => r.Path == "/health");
    }

    [Fact]
    public async Task GrpcProbe_ForAnUnknownService_IsDown_ThoughEveryAnswerIsHttp200()
    {
        await using var lb = await BalancerFixture.StartAsync(edit: GrpcHealthChecks(service: "no.such.Service"), grpc: true);

        // Check answers NOT_FOUND in a trailers-only HTTP 200 response: the verdict comes from grpc-status.
        foreach (var name in new[] { "A", "B", "C" })
        {
            await WaitForHealthAsync(lb, name, "Down", Limit);
        }

        var change = (await lb.StatusAsync())["clusters"]!.AsArray().Single(c => (string)c!["id"]! == Cluster)!["destinations"]![0]!["healthChange"]!;
        Assert.Equal("active health probe failed", (string?)change["reason"]);
    }

    /// <summary>Method, path, content type and protocol of every request a backend received, with the local port.</summary>
    private sealed class SeenRequests : IStartupFilter
    {
        private readonly ConcurrentQueue<(string Method, string Path, string? ContentType, string Protocol, int Port)> _requests = new();

        public void Install(WebApplicationBuilder backend) => backend.Services.AddSingleton<IStartupFilter>(this);

        public List<(string Method, string Path, string? ContentType, string Protocol, int Port)> All() => [.. _requests];

        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use((context, nextMiddleware) =>
            {
                _requests.Enqueue((context.Request.Method, context.Request.Path.Value ?? "", context.Request.ContentType, context.Request.Protocol, context.Connection.LocalPort));
                return nextMiddleware(context);
            });
            next(app);
        };
    }
}
