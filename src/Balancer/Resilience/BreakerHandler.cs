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
/// metadata, no replaced request message), and with no async step of its own: the request's task is completed
/// from the pipeline's completion by a pooled run that also holds the withdrawal's link (a pooled cancellation
/// source), and the pipeline's callback is a pooled source rather than an async method.
/// </summary>
/// <remarks>
/// A withdrawn request ends as a <see cref="DestinationMarkedDownException"/> for the retry middleware; its
/// cancellation is no failure to the breaker, which counts transport errors, timeouts and 502/503/504 only.
/// </remarks>
internal sealed class BreakerHandler : DelegatingHandler
{
    private readonly Func<HttpRequestMessage, ResiliencePipeline<HttpResponseMessage>>? _pipelineFor;
    private readonly ObjectPool<PendingSend> _sends;
    private readonly ObjectPool<PipelineRun> _runs;
    // As many as requests can be in flight at once through one cluster's client, within reason.
    private const int Pooled = 1024;

    private readonly ObjectPool<CancellationTokenSource> _links = new DefaultObjectPool<CancellationTokenSource>(new LinkPolicy(), Pooled);

    /// <param name="pipelineFor">The pipeline of a request's destination; null when the breaker is off.</param>
    public BreakerHandler(Func<HttpRequestMessage, ResiliencePipeline<HttpResponseMessage>>? pipelineFor)
    {
        _pipelineFor = pipelineFor;
        _sends = new DefaultObjectPool<PendingSend>(new PendingSend.Policy(this), Pooled);
        _runs = new DefaultObjectPool<PipelineRun>(new PipelineRun.Policy(this), Pooled);
    }

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
        SendAsync(request, null, cancellationToken);

    /// <summary>Sends <paramref name="request"/>, withdrawn when <paramref name="down"/> fires if it is given.</summary>
    public Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, DownSignals.Signal? down, CancellationToken cancellationToken)
    {
        var pipeline = _pipelineFor?.Invoke(request) ?? ResiliencePipeline<HttpResponseMessage>.Empty;
        if (!ReferenceEquals(pipeline, ResiliencePipeline<HttpResponseMessage>.Empty))
        {
            return _runs.Get().Start(pipeline, request, down?.Token, cancellationToken);
        }

        return down is null ? base.SendAsync(request, cancellationToken) : SendLinkedAsync(request, down.Token, cancellationToken);
    }

    /// <summary>Without a breaker: the send alone, linked to the destination's Down signal.</summary>
    private async Task<HttpResponseMessage> SendLinkedAsync(HttpRequestMessage request, CancellationToken down, CancellationToken cancellationToken)
    {
        var link = new Link(_links);
        try
        {
            return await base.SendAsync(request, link.Start(down, cancellationToken)).ConfigureAwait(false);
        }
        catch (Exception e) when (down.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new DestinationMarkedDownException(e);
        }
        finally
        {
            link.End();
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

    /// <summary>
    /// A request's link to its destination's Down signal: a pooled source cancelled by the caller's token or by
    /// the signal, whichever comes first.
    /// </summary>
    private struct Link(ObjectPool<CancellationTokenSource> pool)
    {
        private CancellationTokenSource? _source;
        private CancellationTokenRegistration _fromCaller;
        private CancellationTokenRegistration _fromDown;

        public CancellationToken Start(CancellationToken down, CancellationToken caller)
        {
            var source = _source = pool.Get();
            _fromCaller = caller.UnsafeRegister(static source => ((CancellationTokenSource)source!).Cancel(), source);
            _fromDown = down.UnsafeRegister(static source => ((CancellationTokenSource)source!).Cancel(), source);
            return source.Token;
        }

        public void End()
        {
            if (_source is null)
            {
                return;
            }

            // Disposing a registration waits for its callback if it is running: after these, nothing cancels the link.
            _fromCaller.Dispose();
            _fromDown.Dispose();
            pool.Return(_source);
            _source = null;
            _fromCaller = default;
            _fromDown = default;
        }
    }

    /// <summary>
    /// One request through the breaker's pipeline, pooled: the task handed to the caller is completed from the
    /// pipeline's own completion, so the request needs no async method of its own around the pipeline's.
    /// </summary>
    private sealed class PipelineRun
    {
        private readonly BreakerHandler _owner;
        private readonly Action _completed;
        private Link _link;
        private CancellationToken? _down;
        private CancellationToken _caller;
        private ResilienceContext? _context;
        private ValueTask<Outcome<HttpResponseMessage>> _pending;
        private TaskCompletionSource<HttpResponseMessage>? _completion;

        private PipelineRun(BreakerHandler owner)
        {
            _owner = owner;
            _link = new Link(owner._links);
            _completed = OnPipelineCompleted;
        }

        public Task<HttpResponseMessage> Start(ResiliencePipeline<HttpResponseMessage> pipeline, HttpRequestMessage request, CancellationToken? down, CancellationToken caller)
        {
            _down = down;
            _caller = caller;
            ValueTask<Outcome<HttpResponseMessage>> run;
            try
            {
                var token = down is { } downToken ? _link.Start(downToken, caller) : caller;
                _context = ResilienceContextPool.Shared.Get(token);
                run = pipeline.ExecuteOutcomeAsync(
                    static (context, state) => state.Handler.StartSend(state.Request, context.CancellationToken),
                    _context,
                    (Handler: _owner, Request: request));
            }
            catch (Exception e)
            {
                run = ValueTask.FromResult(Outcome.FromException<HttpResponseMessage>(e));
            }

            if (run.IsCompleted)
            {
                var error = End(OutcomeOf(run), out var response);
                return error is null ? Task.FromResult(response!) : Task.FromException<HttpResponseMessage>(error);
            }

            _pending = run;
            var completion = _completion = new TaskCompletionSource<HttpResponseMessage>();
            run.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_completed);
            return completion.Task;
        }

        private void OnPipelineCompleted()
        {
            var run = _pending;
            var completion = _completion!;
            _pending = default;
            _completion = null;
            var error = End(OutcomeOf(run), out var response);
            if (error is null)
            {
                completion.SetResult(response!);
            }
            else
            {
                completion.SetException(error);
            }
        }

        private static Outcome<HttpResponseMessage> OutcomeOf(ValueTask<Outcome<HttpResponseMessage>> run)
        {
            try
            {
                return run.GetAwaiter().GetResult();
            }
            catch (Exception e)
            {
                return Outcome.FromException<HttpResponseMessage>(e);
            }
        }

        /// <summary>Gives back what the request held and this run to the pool; the error to hand the caller, if any.</summary>
        private Exception? End(Outcome<HttpResponseMessage> outcome, out HttpResponseMessage? response)
        {
            // Judged before the link is undone, as a send that failed because the link fired.
            var error = outcome.Exception;
            if (error is not null && _down is { IsCancellationRequested: true } && !_caller.IsCancellationRequested)
            {
                error = new DestinationMarkedDownException(error);
            }

            response = error is null ? outcome.Result : null;
            if (_context is { } context)
            {
                _context = null;
                ResilienceContextPool.Shared.Return(context);
            }

            _link.End();
            _down = null;
            _caller = default;
            _owner._runs.Return(this);
            return error;
        }

        /// <summary>Makes runs for one handler's pool.</summary>
        public sealed class Policy(BreakerHandler owner) : PooledObjectPolicy<PipelineRun>
        {
            public override PipelineRun Create() => new(owner);

            public override bool Return(PipelineRun obj) => true;
        }
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
