using System.Threading.Tasks.Sources;
using Balancer.Telemetry;
using Microsoft.Extensions.ObjectPool;
using Polly;

namespace Balancer.Resilience;

/// <summary>
/// Sends each request through its destination's resilience pipeline (circuit breaker, optional attempt
/// timeout), and a request safe to send again (<see cref="RedispatchHandler"/>) also linked to its
/// destination's Down signal until its response headers arrive. It does what
/// Microsoft.Extensions.Http.Resilience's <c>ResilienceHandler</c> does for one pipeline per destination,
/// without what the balancer does not use (no resilience context stored in the request's options, no request
/// metadata, no replaced request message), and in one async step per request: the breaker and the
/// withdrawal share it, the pipeline's callback is a pooled source rather than an async method, and the link
/// is a pooled cancellation source.
/// </summary>
/// <remarks>
/// A withdrawn request ends as a <see cref="DestinationMarkedDownException"/> for the retry middleware; its
/// cancellation is no failure to the breaker, which counts transport errors, timeouts and 502/503/504 only.
/// </remarks>
internal sealed class BreakerHandler : DelegatingHandler
{
    private readonly Func<HttpRequestMessage, ResiliencePipeline<HttpResponseMessage>>? _pipelineFor;
    private readonly ObjectPool<PendingSend> _sends;
    // As many as requests can be in flight at once through one cluster's client, within reason.
    private const int Pooled = 1024;

    private readonly ObjectPool<CancellationTokenSource> _links = new DefaultObjectPool<CancellationTokenSource>(new LinkPolicy(), Pooled);

    /// <param name="pipelineFor">The pipeline of a request's destination; null when the breaker is off.</param>
    public BreakerHandler(Func<HttpRequestMessage, ResiliencePipeline<HttpResponseMessage>>? pipelineFor)
    {
        _pipelineFor = pipelineFor;
        _sends = new DefaultObjectPool<PendingSend>(new PendingSend.Policy(this), Pooled);
    }

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
        SendAsync(request, null, cancellationToken);

    /// <summary>Sends <paramref name="request"/>, withdrawn when <paramref name="down"/> fires if it is given.</summary>
    public Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, DownSignals.Signal? down, CancellationToken cancellationToken)
    {
        var pipeline = _pipelineFor?.Invoke(request) ?? ResiliencePipeline<HttpResponseMessage>.Empty;
        return down is null && ReferenceEquals(pipeline, ResiliencePipeline<HttpResponseMessage>.Empty)
            ? base.SendAsync(request, cancellationToken)
            : SendThroughAsync(pipeline, request, down?.Token, cancellationToken);
    }

    private async Task<HttpResponseMessage> SendThroughAsync(ResiliencePipeline<HttpResponseMessage> pipeline, HttpRequestMessage request, CancellationToken? down, CancellationToken cancellationToken)
    {
        CancellationTokenSource? link = null;
        CancellationTokenRegistration fromCaller = default;
        CancellationTokenRegistration fromDown = default;
        var token = cancellationToken;
        if (down is { } downToken)
        {
            link = _links.Get();
            fromCaller = cancellationToken.UnsafeRegister(static source => ((CancellationTokenSource)source!).Cancel(), link);
            fromDown = downToken.UnsafeRegister(static source => ((CancellationTokenSource)source!).Cancel(), link);
            token = link.Token;
        }

        try
        {
            if (ReferenceEquals(pipeline, ResiliencePipeline<HttpResponseMessage>.Empty))
            {
                return await base.SendAsync(request, token).ConfigureAwait(false);
            }

            var context = ResilienceContextPool.Shared.Get(token);
            try
            {
                var outcome = await pipeline.ExecuteOutcomeAsync(
                    static (context, state) => state.Handler.StartSend(state.Request, context.CancellationToken),
                    context,
                    (Handler: this, Request: request)).ConfigureAwait(false);
                outcome.ThrowIfException();
                return outcome.Result!;
            }
            finally
            {
                ResilienceContextPool.Shared.Return(context);
            }
        }
        catch (Exception e) when (down is { IsCancellationRequested: true } && !cancellationToken.IsCancellationRequested)
        {
            throw new DestinationMarkedDownException(e);
        }
        finally
        {
            if (link is not null)
            {
                // Disposing a registration waits for its callback if it is running: after these, nothing cancels the link.
                fromCaller.Dispose();
                fromDown.Dispose();
                _links.Return(link);
            }
        }
    }

    private ValueTask<Outcome<HttpResponseMessage>> StartSend(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        Task<HttpResponseMessage> send;
        try
        {
            send = base.SendAsync(request, cancellationToken);
        }
        catch (Exception e)
        {
            return ValueTask.FromResult(Outcome.FromException<HttpResponseMessage>(e));
        }

        return PendingSend.Of(send, _sends);
    }

    /// <summary>Keeps a link for the next request unless it was cancelled (a cancelled source cannot be reset).</summary>
    private sealed class LinkPolicy : PooledObjectPolicy<CancellationTokenSource>
    {
        public override CancellationTokenSource Create() => new();

        public override bool Return(CancellationTokenSource obj) => obj.TryReset();
    }

    /// <summary>
    /// The send under the breaker as the <see cref="ValueTask{TResult}"/> the pipeline's callback returns:
    /// completed with the send's outcome when the send's task completes, and back in the pool once the pipeline
    /// has read it.
    /// </summary>
    private sealed class PendingSend : IValueTaskSource<Outcome<HttpResponseMessage>>
    {
        private readonly ObjectPool<PendingSend> _pool;
        private readonly Action _completed;
        private ManualResetValueTaskSourceCore<Outcome<HttpResponseMessage>> _core;
        private Task<HttpResponseMessage>? _send;

        private PendingSend(ObjectPool<PendingSend> pool)
        {
            _pool = pool;
            _completed = OnSendCompleted;
        }

        public static ValueTask<Outcome<HttpResponseMessage>> Of(Task<HttpResponseMessage> send, ObjectPool<PendingSend> pool)
        {
            if (send.IsCompleted)
            {
                return ValueTask.FromResult(OutcomeOf(send));
            }

            var pending = pool.Get();
            pending._send = send;
            send.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(pending._completed);
            return new ValueTask<Outcome<HttpResponseMessage>>(pending, pending._core.Version);
        }

        public Outcome<HttpResponseMessage> GetResult(short token)
        {
            try
            {
                return _core.GetResult(token);
            }
            finally
            {
                _core.Reset();
                _pool.Return(this);
            }
        }

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);

        private static Outcome<HttpResponseMessage> OutcomeOf(Task<HttpResponseMessage> send)
        {
            try
            {
                return Outcome.FromResult(send.GetAwaiter().GetResult());
            }
            catch (Exception e)
            {
                return Outcome.FromException<HttpResponseMessage>(e);
            }
        }

        private void OnSendCompleted()
        {
            var send = _send!;
            _send = null;
            _core.SetResult(OutcomeOf(send));
        }

        /// <summary>Makes sources for one handler's pool.</summary>
        public sealed class Policy(BreakerHandler owner) : PooledObjectPolicy<PendingSend>
        {
            public override PendingSend Create() => new(owner._sends);

            public override bool Return(PendingSend obj) => true;
        }
    }
}
