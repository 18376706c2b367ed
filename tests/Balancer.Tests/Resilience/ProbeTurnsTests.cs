using System.Net;
using Balancer.Health;
using Balancer.Resilience;

namespace Balancer.Tests.Resilience;

/// <summary>
/// A probe round of thousands of destinations sharing one address: at most
/// <see cref="ProbeRequests.ProbeHandler.ProbesPerAddress"/> probes of that address on the wire at once, each
/// response's body read before the next probe goes, and a probe that timed out waiting for its turn counted as
/// not sent.
/// </summary>
[Trait("Category", "Unit")]
public sealed class ProbeTurnsTests
{
    [Fact]
    public async Task ProbeRound_1000ProbesOfOneAddress_AtMost64OnTheWire_OtherAddressesNotHeldUp()
    {
        var inner = new CountingHandler();
        using var probes = new ProbeRequests.ProbeHandler(TimeProvider.System) { InnerHandler = inner };
        using var invoker = new HttpMessageInvoker(probes);

        var shared = Enumerable.Range(0, 1000).Select(_ => SendAsync(invoker, "http://127.0.0.1:5001/health", CancellationToken.None)).ToList();
        await inner.WaitForInFlightAsync(ProbeRequests.ProbeHandler.ProbesPerAddress);
        // Another address has turns of its own; a request that is not a probe waits for none.
        var other = SendAsync(invoker, "http://127.0.0.1:5002/health", CancellationToken.None);
        using var proxied = new HttpRequestMessage(HttpMethod.Get, "http://127.0.0.1:5001/");
        var forwarded = invoker.SendAsync(proxied, CancellationToken.None);
        await inner.WaitForInFlightAsync(ProbeRequests.ProbeHandler.ProbesPerAddress + 2);
        inner.Open();

        var responses = await Task.WhenAll(shared);
        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(ProbeRequests.ProbeHandler.ProbesPerAddress + 2, inner.MaxInFlight);
        Assert.Equal(HttpStatusCode.OK, (await other).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await forwarded).StatusCode);
        // Every probe body was read inside the handler (its connection freed); the proxied one is left to its reader.
        Assert.Equal(1001, inner.BodiesRead);
    }

    [Fact]
    public async Task ProbeStillWaitingForItsTurn_WhenItsTimeoutEnds_IsMarkedNotSent()
    {
        var inner = new CountingHandler();
        using var probes = new ProbeRequests.ProbeHandler(TimeProvider.System) { InnerHandler = inner };
        using var invoker = new HttpMessageInvoker(probes);
        var busy = Enumerable.Range(0, ProbeRequests.ProbeHandler.ProbesPerAddress).Select(_ => SendAsync(invoker, "http://127.0.0.1:5001/health", CancellationToken.None)).ToList();
        await inner.WaitForInFlightAsync(ProbeRequests.ProbeHandler.ProbesPerAddress);

        using var timeout = new CancellationTokenSource();
        var waiting = SendAsync(invoker, "http://127.0.0.1:5001/health", timeout.Token);
        await timeout.CancelAsync();
        var response = await waiting;

        Assert.True(ProbeMarks.IsSkipped(response.RequestMessage));
        Assert.Equal(ProbeRequests.ProbeHandler.ProbesPerAddress, inner.Started);
        inner.Open();
        await Task.WhenAll(busy);
    }

    private static Task<HttpResponseMessage> SendAsync(HttpMessageInvoker invoker, string url, CancellationToken cancellationToken)
    {
        var request = new ProbeMessage(HttpMethod.Get, new Uri(url));
        ProbeMarks.Mark(request, new ProbeAttempt(DateTimeOffset.UnixEpoch));
        return invoker.SendAsync(request, cancellationToken);
    }

    /// <summary>Holds every send until opened; counts sends in flight and bodies read to the end.</summary>
    private sealed class CountingHandler : HttpMessageHandler
    {
        private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _inFlight;
        private int _maxInFlight;
        private int _started;
        private int _bodiesRead;

        public int MaxInFlight => Volatile.Read(ref _maxInFlight);

        public int Started => Volatile.Read(ref _started);

        public int BodiesRead => Volatile.Read(ref _bodiesRead);

        public void Open() => _open.TrySetResult();

        public Task WaitForInFlightAsync(int count) =>
            Infrastructure.Poll.UntilAsync(() => Task.FromResult(Volatile.Read(ref _inFlight) >= count), TimeSpan.FromSeconds(10), $"{count} sends in flight");

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _started);
            var now = Interlocked.Increment(ref _inFlight);
            InterlockedMax(ref _maxInFlight, now);
            try
            {
                await _open.Task.WaitAsync(cancellationToken);
            }
            finally
            {
                Interlocked.Decrement(ref _inFlight);
            }

            return new HttpResponseMessage(HttpStatusCode.OK) { RequestMessage = request, Content = new CountedBody(this) };
        }

        private static void InterlockedMax(ref int target, int value)
        {
            int seen;
            while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen)
            {
            }
        }

        private sealed class CountedBody(CountingHandler owner) : HttpContent
        {
            protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
            {
                await stream.WriteAsync("ok"u8.ToArray());
                Interlocked.Increment(ref owner._bodiesRead);
            }

            protected override bool TryComputeLength(out long length)
            {
                length = 2;
                return true;
            }
        }
    }
}
