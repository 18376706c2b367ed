using Polly;

namespace Balancer.Resilience;

/// <summary>
/// Sends each request through its destination's resilience pipeline (circuit breaker, optional attempt
/// timeout). It does what Microsoft.Extensions.Http.Resilience's <c>ResilienceHandler</c> does for one
/// pipeline per destination, without what the balancer does not use: no resilience context stored in the
/// request's options, no request metadata, no replaced request message: a pooled context and one callback
/// per request, which is the handler's whole cost on the success path.
/// </summary>
internal sealed class BreakerHandler(Func<HttpRequestMessage, ResiliencePipeline<HttpResponseMessage>> pipelineFor) : DelegatingHandler
{
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var pipeline = pipelineFor(request);
        return ReferenceEquals(pipeline, ResiliencePipeline<HttpResponseMessage>.Empty)
            ? base.SendAsync(request, cancellationToken)
            : SendThroughAsync(pipeline, request, cancellationToken);
    }

    private async Task<HttpResponseMessage> SendThroughAsync(ResiliencePipeline<HttpResponseMessage> pipeline, HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        try
        {
            var outcome = await pipeline.ExecuteOutcomeAsync(
                static async (context, state) =>
                {
                    try
                    {
                        return Outcome.FromResult(await state.Handler.SendInnerAsync(state.Request, context.CancellationToken).ConfigureAwait(false));
                    }
                    catch (Exception e)
                    {
                        return Outcome.FromException<HttpResponseMessage>(e);
                    }
                },
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

    private Task<HttpResponseMessage> SendInnerAsync(HttpRequestMessage request, CancellationToken cancellationToken) => base.SendAsync(request, cancellationToken);
}
