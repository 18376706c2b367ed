using Grpc.Core;

namespace SampleBackend.Rpc;

/// <summary>The unary sample service: says which backend answered, or fails with the status asked for.</summary>
internal sealed class GreeterService(BackendState state) : Greeter.GreeterBase
{
    public override Task<HelloReply> SayHello(HelloRequest request, ServerCallContext context)
    {
        if (request.FailWith != 0)
        {
            if (request.FailWith is < 1 or > 16)
            {
                throw new RpcException(new Status(StatusCode.InvalidArgument, "fail_with must be a gRPC status code from 1 to 16, or 0"));
            }

            throw new RpcException(new Status((StatusCode)request.FailWith, $"failing as asked ({state.Name})"));
        }

        return Task.FromResult(new HelloReply { Backend = state.Name, Message = $"Hello {request.Name} from {state.Name}" });
    }
}
