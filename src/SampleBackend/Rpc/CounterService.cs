using Grpc.Core;

namespace SampleBackend.Rpc;

/// <summary>The server-streaming sample service: numbered messages, all from this backend.</summary>
internal sealed class CounterService(BackendState state) : Counter.CounterBase
{
    public const int MaxCount = 100_000;

    public override async Task Count(CountRequest request, IServerStreamWriter<CountReply> responseStream, ServerCallContext context)
    {
        if (request.Count is < 0 or > MaxCount)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"count must be from 0 to {MaxCount}"));
        }

        var interval = TimeSpan.FromMilliseconds(Math.Clamp(request.IntervalMs, 0, 60_000));
        for (var i = 1; i <= request.Count; i++)
        {
            if (i > 1 && interval > TimeSpan.Zero)
            {
                await Task.Delay(interval, context.CancellationToken);
            }

            await responseStream.WriteAsync(new CountReply { Index = i, Backend = state.Name }, context.CancellationToken);
        }
    }
}
