using Balancer.Configuration;
using Balancer.Hosting;
using Balancer.PerDestination;
using Microsoft.Extensions.Options;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Balancer.Telemetry;

public static class TracingServiceCollectionExtensions
{
    /// <summary>The standard OpenTelemetry variable (or config key) that switches the OTLP exporter on.</summary>
    public const string OtlpEndpointKey = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>YARP's own ActivitySource (<c>proxy.forwarder</c> and probe spans); the balancer does not listen to it.</summary>
    public const string YarpActivitySource = "Yarp.ReverseProxy";

    private const string ServiceNameKey = "OTEL_SERVICE_NAME";
    private const string DetailedKey = "Balancer:Tracing:Detailed";
    private const string DefaultServiceName = "balancer";

    /// <summary>
    /// OpenTelemetry tracing exported over OTLP, but only when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set
    /// (environment or config). Otherwise nothing is registered at all.
    /// </summary>
    /// <remarks>
    /// Not registering is what makes "off" free: no listener on any source and no tracing middleware in the
    /// pipeline. A client's <c>traceparent</c> reaches the backends either way: untraced, YARP copies it with
    /// the other headers; traced, <see cref="TraceContextTransformProvider"/> replaces it with the balancer's.
    /// Which spans exist while tracing is on, and why only those, is told at <see cref="ProxyTracing"/>.
    /// </remarks>
    public static IServiceCollection AddBalancerTracing(this IServiceCollection services, IConfiguration configuration)
    {
        if (string.IsNullOrWhiteSpace(configuration[OtlpEndpointKey]))
        {
            return services;
        }

        // The exporter reads the endpoint, protocol and headers from the same OTEL_EXPORTER_OTLP_* keys.
        return services.AddBalancerTracing(configuration, static tracing => tracing.AddOtlpExporter());
    }

    /// <summary>The same spans with another exporter (the tests use an in-memory one).</summary>
    internal static IServiceCollection AddBalancerTracing(this IServiceCollection services, IConfiguration configuration, Action<TracerProviderBuilder> export)
    {
        var explicitName = !string.IsNullOrWhiteSpace(configuration[ServiceNameKey]);
        var detailed = configuration.GetValue<bool>(DetailedKey);
        // Read here once: it decides which sources the provider listens to, and the rest follows that.
        services.AddSingleton(provider => new ProxyTracing(
            provider.GetRequiredService<IOptionsMonitor<BalancerOptions>>(),
            detailed,
            Random.Shared.NextDouble,
            provider.GetRequiredService<TimeProvider>(),
            provider.GetService<BalancerMetricsRegistry>()?.Factory));
        services.AddDestinationSlots();
        if (!detailed)
        {
            services.AddSingleton<Yarp.ReverseProxy.Transforms.Builder.ITransformProvider, TraceContextTransformProvider>();
        }

        services.AddOpenTelemetry()
            .ConfigureResource(resource =>
            {
                // Only a default: a service name an operator set in OTEL_SERVICE_NAME must win.
                if (!explicitName)
                {
                    resource.AddService(DefaultServiceName);
                }
            })
            .WithTracing(tracing =>
            {
                if (detailed)
                {
                    tracing
                        .AddSource(YarpActivitySource)
                        // Scrapes and status-page polls every second would drown the proxied traffic.
                        .AddAspNetCoreInstrumentation(options => options.Filter = static context => !Listeners.IsManagement(context))
                        .AddHttpClientInstrumentation()
                        .SetSampler(static provider => new ParentBasedSampler(new RatioSampler(provider.GetRequiredService<ProxyTracing>())));
                }
                else
                {
                    // Only the balancer's own spans. Management requests (scrapes, status polls every second)
                    // are not traced: the middleware is in the proxy pipeline alone.
                    tracing.AddSource(ProxyTracing.SourceName);
                }

                export(tracing);
            });
        return services;
    }
}

/// <summary>Puts the tracing middleware into the pipelines, when tracing is on.</summary>
internal static class TracingPipelineExtensions
{
    /// <summary>The server span, first thing on the proxy listener's pipeline.</summary>
    public static IApplicationBuilder UseBalancerServerSpans(this IApplicationBuilder app) =>
        MakesOwnSpans(app) ? app.UseMiddleware<ServerSpanMiddleware>() : app;

    /// <summary>A client span per attempt, right after load balancing picked the destination.</summary>
    public static IApplicationBuilder UseBalancerAttemptSpans(this IApplicationBuilder app) =>
        MakesOwnSpans(app) ? app.UseMiddleware<AttemptSpanMiddleware>() : app;

    /// <summary>Tracing is on and not <see cref="ProxyTracing.Detailed"/>.</summary>
    private static bool MakesOwnSpans(IApplicationBuilder app) => app.ApplicationServices.GetService<ProxyTracing>() is { Detailed: false };
}
