using System.Net;
using System.Net.Http.Headers;
using Balancer.Configuration;
using Balancer.Grpc;
using Balancer.Resilience;
using Google.Protobuf;
using Grpc.Health.V1;
using Microsoft.Extensions.Configuration;

namespace Balancer.Tests.Grpc;

/// <summary>The gRPC pieces that need no sockets: recognising calls, judging health answers, replaying bodies, config checks.</summary>
public sealed class GrpcPartsTests
{
    [Theory]
    [InlineData("application/grpc", true)]
    [InlineData("application/grpc+proto", true)]
    [InlineData("Application/GRPC; charset=utf-8", true)]
    [InlineData("application/grpc-web", false)]
    [InlineData("application/grpc-web-text", false)]
    [InlineData("application/grpcx", false)]
    [InlineData("application/json", false)]
    [InlineData(null, false)]
    public void IsGrpc_TakesGrpcContentTypes_NotGrpcWeb(string? contentType, bool expected) =>
        Assert.Equal(expected, GrpcProtocol.IsGrpc(contentType));

    [Fact]
    public void StatusNames_AreTheSpecificationsNames_OutOfRangeIsUnknown()
    {
        Assert.Equal("OK", GrpcProtocol.Name(0));
        Assert.Equal("UNAVAILABLE", GrpcProtocol.Name(14));
        Assert.Equal("UNAUTHENTICATED", GrpcProtocol.Name(16));
        Assert.Equal("UNKNOWN", GrpcProtocol.Name(17));
        Assert.Equal("UNKNOWN", GrpcProtocol.Name(-1));
        Assert.Equal(14, GrpcProtocol.FromHttpStatus(503));
        Assert.Equal(12, GrpcProtocol.FromHttpStatus(404));
        Assert.Equal(2, GrpcProtocol.FromHttpStatus(500));
    }

    [Theory]
    [InlineData(HealthCheckResponse.Types.ServingStatus.Serving, "0", true, "SERVING")]
    [InlineData(HealthCheckResponse.Types.ServingStatus.NotServing, "0", false, "gRPC health status NotServing")]
    [InlineData(HealthCheckResponse.Types.ServingStatus.ServiceUnknown, "0", false, "gRPC health status ServiceUnknown")]
    [InlineData(HealthCheckResponse.Types.ServingStatus.Serving, "12", false, "gRPC health check failed: UNIMPLEMENTED")]
    [InlineData(HealthCheckResponse.Types.ServingStatus.Serving, null, false, "gRPC health check answered without a grpc-status")]
    public void Judge_NeedsStatusZeroAndServing(HealthCheckResponse.Types.ServingStatus serving, string? grpcStatus, bool up, string reason)
    {
        using var response = new HttpResponseMessage(HttpStatusCode.OK);
        if (grpcStatus is not null)
        {
            response.TrailingHeaders.Add("grpc-status", grpcStatus);
        }

        Assert.Equal((up, reason), GrpcHealthProbe.Judge(response, Frame(new HealthCheckResponse { Status = serving })));
    }

    [Fact]
    public void Judge_TrailersOnlyError_AndMalformedBodies_AreNotServing()
    {
        using var trailersOnly = new HttpResponseMessage(HttpStatusCode.OK);
        trailersOnly.Headers.Add("grpc-status", "5");
        Assert.Equal((false, "gRPC health check failed: NOT_FOUND"), GrpcHealthProbe.Judge(trailersOnly, []));

        using var ok = new HttpResponseMessage(HttpStatusCode.OK);
        ok.TrailingHeaders.Add("grpc-status", "0");
        Assert.Equal((false, "gRPC health check answer is not one uncompressed message"), GrpcHealthProbe.Judge(ok, [0, 0, 0, 0, 9, 8]));
        Assert.Equal((false, "gRPC health check answer is not one uncompressed message"), GrpcHealthProbe.Judge(ok, [1, 0, 0, 0, 0]));
        Assert.Equal((false, "gRPC health check answer is not a HealthCheckResponse"), GrpcHealthProbe.Judge(ok, [0, 0, 0, 0, 1, 0xff]));
    }

    [Fact]
    public async Task ReplayableBody_NextAttempt_GivesTheSameBytes_ThenTheRestOfTheBody()
    {
        var source = Enumerable.Range(0, 1000).Select(i => (byte)i).ToArray();
        var body = new ReplayableBody(new MemoryStream(source), limit: 4096);

        var first = new byte[300];
        Assert.Equal(300, await body.First().ReadAsync(first));
        var all = new MemoryStream();
        await body.Next().CopyToAsync(all, 7);

        Assert.True(body.CanReplay);
        Assert.Equal(source, all.ToArray());
        var again = new MemoryStream();
        body.Next().CopyTo(again);
        Assert.Equal(source, again.ToArray());
    }

    [Fact]
    public async Task ReplayableBody_NextAttemptWhileTheGivenUpAttemptStillReads_ReadsTheClientBodyOneAtATime_AndLosesNothing()
    {
        // A pipe's stream, like Kestrel's request body, refuses a second read while one is pending.
        var pipe = new System.IO.Pipelines.Pipe();
        var body = new ReplayableBody(pipe.Reader.AsStream(), limit: 4096);
        var givenUpBody = body.First();
        await pipe.Writer.WriteAsync(new byte[] { 1, 2, 3 });
        var buffer = new byte[16];
        Assert.Equal(3, await givenUpBody.ReadAsync(buffer));

        // The first attempt's copy waits for more of the client's body when its destination fails.
        var givenUp = givenUpBody.ReadAsync(new byte[16]).AsTask();
        Assert.False(givenUp.IsCompleted);
        var retried = new MemoryStream();
        var copy = body.Next().CopyToAsync(retried, 16);
        await pipe.Writer.WriteAsync(new byte[] { 4, 5 });
        await pipe.Writer.CompleteAsync();
        await copy;

        Assert.Equal(2, await givenUp);
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5 }, retried.ToArray());
        Assert.True(body.CanReplay);

        // The given-up copy's next read would race the retry for the client's stream: it ends instead.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => givenUpBody.ReadAsync(new byte[16]).AsTask());
    }

    [Fact]
    public async Task ReplayableBody_ManyGivenUpCopiesReadingAtOnce_NeverReadTheClientStreamConcurrently()
    {
        // Copies of given-up attempts keep reading on other threads while later attempts start: the client's
        // stream (a pipe, which throws on a second pending read) must see one read at a time, and the last
        // attempt must get every byte in order.
        var source = Enumerable.Range(0, 3000).Select(i => (byte)i).ToArray();
        var pipe = new System.IO.Pipelines.Pipe();
        var body = new ReplayableBody(pipe.Reader.AsStream(), limit: 4096);
        var feeder = Task.Run(async () =>
        {
            for (var i = 0; i < source.Length; i += 100)
            {
                await pipe.Writer.WriteAsync(source.AsMemory(i, 100));
                await Task.Yield();
            }

            await pipe.Writer.CompleteAsync();
        });
        var givenUp = new List<Task>();
        for (var attempt = 0; attempt < 20; attempt++)
        {
            var stream = attempt == 0 ? body.First() : body.Next();
            givenUp.Add(Task.Run(async () =>
            {
                try
                {
                    await stream.CopyToAsync(Stream.Null, 64);
                }
                catch (OperationCanceledException)
                {
                }
            }));
        }

        var last = new MemoryStream();
        await body.Next().CopyToAsync(last, 50);
        await feeder;
        await Task.WhenAll(givenUp);

        Assert.Equal(source, last.ToArray());
    }

    [Fact]
    public async Task ReplayableBody_PastTheLimit_StillPassesEverything_ButCannotReplay()
    {
        var source = new byte[5000];
        Random.Shared.NextBytes(source);
        var body = new ReplayableBody(new MemoryStream(source), limit: 4096);

        var all = new MemoryStream();
        await body.First().CopyToAsync(all, 1000);

        Assert.Equal(source, all.ToArray());
        Assert.False(body.CanReplay);
        Assert.Throws<InvalidOperationException>(() => body.Next());
    }

    [Fact]
    public void GrpcHealthCheckedCluster_WithoutHttp2_IsRejected_NamingTheKeys()
    {
        var errors = ConfigValidator.Validate(Config(new()
        {
            ["ReverseProxy:Clusters:g:Metadata:HealthCheck.Protocol"] = "Grpc",
            ["ReverseProxy:Clusters:h:Metadata:HealthCheck.Protocol"] = "Smoke",
            ["Balancer:Retry:GrpcIdempotent"] = "maybe",
        }));

        Assert.Equal(
        [
            "Balancer:Retry:GrpcIdempotent: 'maybe' is not true or false",
            "ReverseProxy:Clusters:g:HttpRequest:Version: must be \"2\" when ReverseProxy:Clusters:g:Metadata:HealthCheck.Protocol is Grpc: gRPC needs HTTP/2 to the destinations",
            "ReverseProxy:Clusters:g:HttpRequest:VersionPolicy: must be \"RequestVersionExact\" when ReverseProxy:Clusters:g:Metadata:HealthCheck.Protocol is Grpc and a destination is http://: otherwise HTTP/1.1 is sent to cleartext destinations",
            "ReverseProxy:Clusters:h:Metadata:HealthCheck.Protocol: unknown protocol 'Smoke'; use one of Http, Grpc",
        ], errors);

        Assert.Empty(ConfigValidator.Validate(Config(new()
        {
            ["ReverseProxy:Clusters:g:Metadata:HealthCheck.Protocol"] = "grpc",
            ["ReverseProxy:Clusters:g:HttpRequest:Version"] = "2",
            ["ReverseProxy:Clusters:g:HttpRequest:VersionPolicy"] = "RequestVersionExact",
        })));
    }

    private static IConfiguration Config(Dictionary<string, string?> values)
    {
        values["ReverseProxy:Clusters:g:Destinations:A:Address"] = "http://127.0.0.1:6001/";
        values["ReverseProxy:Clusters:h:Destinations:A:Address"] = "http://127.0.0.1:5001/";
        return new ConfigurationBuilder().AddInMemoryCollection(values).Build();
    }

    private static byte[] Frame(IMessage message)
    {
        var bytes = message.ToByteArray();
        return [0, .. BitConverter.GetBytes(bytes.Length).Reverse(), .. bytes];
    }
}
