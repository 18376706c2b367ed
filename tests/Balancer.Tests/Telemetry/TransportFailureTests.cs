using System.Net.Http;
using Balancer.Telemetry;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Forwarder;

namespace Balancer.Tests.Telemetry;

[Trait("Category", "Unit")]
public sealed class TransportFailureTests
{
    private static readonly HttpRequestException StreamReset = new(HttpRequestError.HttpProtocolError, "The HTTP/2 server reset the stream.", new IOException("reset"));

    [Fact]
    public void BodyReadCancelledBecauseTheDestinationFailed_BlamesTheDestination()
    {
        // YARP's report when the destination's connection dies while the client's body is still being read.
        var error = new AggregateException(new TaskCanceledException(), StreamReset);

        Assert.Equal(FailureKind.Reset, TransportFailure.Classify(ForwarderError.RequestBodyClient, error));
    }

    [Fact]
    public void BodyTheClientBroke_StaysTheClientsFault()
    {
        var badBody = new AggregateException(new BadHttpRequestException("Bad chunk size data."), StreamReset);
        var cancelledWithNoTransportFailure = new AggregateException(new TaskCanceledException(), new TaskCanceledException());

        Assert.Equal(FailureKind.None, TransportFailure.Classify(ForwarderError.RequestBodyClient, badBody));
        Assert.Equal(FailureKind.None, TransportFailure.Classify(ForwarderError.RequestBodyClient, cancelledWithNoTransportFailure));
        Assert.Equal(FailureKind.None, TransportFailure.Classify(ForwarderError.RequestBodyClient, new TaskCanceledException()));
    }
}
