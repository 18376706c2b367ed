using Balancer.Tests.Infrastructure;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using SampleBackend.Rpc;

namespace Balancer.Tests.Grpc;

/// <summary>The sample backend's gRPC port, called directly with Grpc.Net.Client.</summary>
public sealed class SampleBackendGrpcTests
{
    [Fact]
    public async Task GrpcPort_ServesUnaryAndStream_EveryResponseCarriesXBackend_HttpPortStillHttp1()
    {
        await using var backend = await BackendHost.StartAsync("A", grpc: true);
        using var channel = GrpcChannel.ForAddress(backend.GrpcAddress!);

        using var hello = new Greeter.GreeterClient(channel).SayHelloAsync(new HelloRequest { Name = "test" });
        var reply = await hello.ResponseAsync;
        Assert.Equal("A", reply.Backend);
        Assert.Equal("Hello test from A", reply.Message);
        Assert.Equal("A", (await hello.ResponseHeadersAsync).GetValue("x-backend"));

        using var count = new Counter.CounterClient(channel).Count(new CountRequest { Count = 100 });
        Assert.Equal("A", (await count.ResponseHeadersAsync).GetValue("x-backend"));
        var indexes = new List<int>();
        await foreach (var message in count.ResponseStream.ReadAllAsync())
        {
            Assert.Equal("A", message.Backend);
            indexes.Add(message.Index);
        }

        Assert.Equal(Enumerable.Range(1, 100), indexes);
        Assert.Equal(StatusCode.OK, count.GetStatus().StatusCode);

        using var http = new HttpClient { BaseAddress = backend.Address };
        using var response = await http.GetAsync("/");
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(new Version(1, 1), response.Version);
        Assert.Equal("A", response.Headers.GetValues("X-Backend").Single());
    }

    [Fact]
    public async Task FailWith_EndsTheCallWithThatStatus_StillTaggedWithXBackend()
    {
        await using var backend = await BackendHost.StartAsync("B", grpc: true);
        using var channel = GrpcChannel.ForAddress(backend.GrpcAddress!);
        var greeter = new Greeter.GreeterClient(channel);

        using var call = greeter.SayHelloAsync(new HelloRequest { FailWith = (int)StatusCode.ResourceExhausted });
        var error = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync);

        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        Assert.Equal("B", (await call.ResponseHeadersAsync).GetValue("x-backend"));
        var invalid = await Assert.ThrowsAsync<RpcException>(() => greeter.SayHelloAsync(new HelloRequest { FailWith = 17 }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, invalid.StatusCode);
    }

    [Fact]
    public async Task GrpcHealth_FollowsTheUnhealthySwitch()
    {
        await using var backend = await BackendHost.StartAsync("C", grpc: true);
        using var channel = GrpcChannel.ForAddress(backend.GrpcAddress!);
        var health = new global::Grpc.Health.V1.Health.HealthClient(channel);

        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest())).Status);
        backend.State.Healthy = false;
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, (await health.CheckAsync(new HealthCheckRequest())).Status);
        backend.State.Healthy = true;
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest())).Status);
        var unknown = await Assert.ThrowsAsync<RpcException>(() => health.CheckAsync(new HealthCheckRequest { Service = "no.such.Service" }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
    }

    [Fact]
    public async Task GrpcCallCommand_CallsOverOneChannel_PrintsEachBackend_ExitCodeSaysIfAllSucceeded()
    {
        await using var backend = await BackendHost.StartAsync("A", grpc: true);
        var url = backend.GrpcAddress!.ToString();

        var output = new StringWriter();
        Assert.Equal(0, GrpcCallCommand.Run(["--grpc-call", url, "--calls", "3", "--stream", "5", "--health"], output, output));
        var text = output.ToString();
        Assert.Contains("call 3: x-backend=A Hello grpc-call from A", text, StringComparison.Ordinal);
        Assert.Contains("stream: 5 of 5 messages from x-backend=A", text, StringComparison.Ordinal);
        Assert.Contains("health: Serving from x-backend=A", text, StringComparison.Ordinal);
        Assert.EndsWith("A=3" + Environment.NewLine, text, StringComparison.Ordinal);

        var failing = new StringWriter();
        Assert.Equal(1, GrpcCallCommand.Run(["--grpc-call", url, "--calls", "1", "--fail-with", "14"], failing, failing));
        Assert.Contains("call 1: Unavailable", failing.ToString(), StringComparison.Ordinal);

        var usage = new StringWriter();
        Assert.Equal(2, GrpcCallCommand.Run(["--grpc-call", "ftp://x", "--calls", "1"], usage, usage));
        Assert.Contains("is not an http:// or https:// URL", usage.ToString(), StringComparison.Ordinal);
        Assert.Equal(2, GrpcCallCommand.Run(["--grpc-call", url, "--calls", "many"], usage, usage));
        Assert.Contains("--calls: 'many' is not a whole number", usage.ToString(), StringComparison.Ordinal);
    }
}
