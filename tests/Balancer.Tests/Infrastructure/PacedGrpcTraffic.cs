using Grpc.Core;
using Grpc.Net.Client;
using SampleBackend.Rpc;

namespace Balancer.Tests.Infrastructure;

/// <summary>
/// One unary gRPC call per tick over one cleartext HTTP/2 channel, every fourth asking the backend to fail
/// with FAILED_PRECONDITION, until disposed: the gRPC counterpart of <see cref="PacedTraffic"/>.
/// </summary>
internal sealed class PacedGrpcTraffic : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly GrpcChannel _channel;
    private Task _running = Task.CompletedTask;

    private PacedGrpcTraffic(Uri address) => _channel = GrpcChannel.ForAddress(address);

    public static PacedGrpcTraffic Start(Uri h2cAddress, TimeSpan every)
    {
        var traffic = new PacedGrpcTraffic(h2cAddress);
        traffic._running = Task.Run(() => traffic.RunAsync(every));
        return traffic;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _running;
        _channel.Dispose();
        _stop.Dispose();
    }

    private async Task RunAsync(TimeSpan every)
    {
        var greeter = new Greeter.GreeterClient(_channel);
        using var timer = new PeriodicTimer(every);
        var calls = 0;
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token))
            {
                var fail = ++calls % 4 == 0 ? (int)StatusCode.FailedPrecondition : 0;
                try
                {
                    await greeter.SayHelloAsync(new HelloRequest { Name = "paced", FailWith = fail }, cancellationToken: _stop.Token);
                }
                catch (RpcException) when (!_stop.IsCancellationRequested)
                {
                    // Failed calls are part of the traffic.
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
        catch (RpcException) when (_stop.IsCancellationRequested)
        {
        }
    }
}
