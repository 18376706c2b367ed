using Balancer.Hosting;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Balancer.Telemetry;

public static class TracingServiceCollectionExtensions
{
    /// <summary>The standard OpenTelemetry variable (or config key) that switches the OTLP exporter on.</summary>
    public const string OtlpEndpointKey = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>YARP's own ActivitySource: <c>proxy.forwarder</c> per proxied request, and the health probe rounds.</summary>
    public const string YarpActivitySource = "Yarp.ReverseProxy";

    private const string ServiceNameKey = "OTEL_SERVICE_NAME";
    private const string DefaultServiceName = "balancer";

    /// <summary>
    /// OpenTelemetry tracing exported over OTLP, but only when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set
    /// (environment or config). Otherwise nothing is registered at all.
    /// </summary>
    /// <remarks>
    /// Not registering is what makes "off" free: a TracerProvider, even one without an exporter, puts an
    /// ActivityListener on its sources whose default sampler records everything, so every request would
    /// allocate and time three activities for nobody. Without a listener YARP's <c>CreateActivity</c> returns
    /// null and the HttpClient creates no span of its own. The W3C <c>traceparent</c> still reaches the
    /// backends either way: YARP's outbound handler injects it from the current activity through
    /// <see cref="System.Diagnostics.DistributedContextPropagator"/>, and copies the client's own header
    /// when there is no activity.
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
                tracing
                    .AddSource(YarpActivitySource)
                    // Scrapes and status-page polls every second would drown the proxied traffic.
                    .AddAspNetCoreInstrumentation(options => options.Filter = static context => !Listeners.IsManagement(context))
                    .AddHttpClientInstrumentation();
                export(tracing);
            });
        return services;
    }
}
