using System.Text.Json;
using System.Text.Json.Serialization;
using Balancer.Telemetry;
using Prometheus;

namespace Balancer.Management;

/// <summary>The management listener's pipeline: access check, liveness, readiness, status API, status page, runtime API, the instance drain switch.</summary>
internal static partial class ManagementApp
{

    public static void Configure(IApplicationBuilder management)
    {
        var metrics = management.ApplicationServices.GetRequiredService<BalancerMetricsRegistry>();
        management.Use(ActivatorUtilities.CreateInstance<ManagementAccess>(management.ApplicationServices).InvokeAsync);
        management.Map(MetricsEndpoint.Path, branch => branch.Run(context => MetricsEndpoint.WriteAsync(context, metrics)));
        management.Use(Readiness.InstanceEndpoints.HandleAsync);
        var runtime = management.ApplicationServices.GetRequiredService<Runtime.RuntimeApi>();
        management.Run(context =>
        {
            var request = context.Request;
            if (Runtime.RuntimeApi.Handles(request.Path))
            {
                return runtime.HandleAsync(context);
            }

            if (!HttpMethods.IsGet(request.Method) && !HttpMethods.IsHead(request.Method))
            {
                context.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
                context.Response.Headers.Allow = "GET, HEAD";
                return Task.CompletedTask;
            }

            return request.Path.Value switch
            {
                "/" or "/index.html" => StatusPage.WriteAsync(context),
                "/healthz" => context.Response.WriteAsync("ok\n"),
                Readiness.InstanceEndpoints.ReadyPath => Readiness.InstanceEndpoints.WriteReadinessAsync(context),
                "/status" => WriteStatus(context),
                _ => NotFound(context),
            };
        });
    }

    private static Task WriteStatus(HttpContext context)
    {
        var (query, error) = StatusQuery.Parse(context.Request.Query);
        context.Response.Headers.CacheControl = "no-store";
        if (query is null)
        {
            return Runtime.RuntimeApi.ErrorAsync(context, StatusCodes.Status400BadRequest, error!);
        }

        var status = context.RequestServices.GetRequiredService<StatusApi>().Snapshot(query);
        return context.Response.WriteAsJsonAsync(status, StatusJson.Default.StatusDocument);
    }

    private static Task NotFound(HttpContext context)
    {
        context.Response.StatusCode = StatusCodes.Status404NotFound;
        return context.Response.WriteAsync("not found\n");
    }

    /// <summary>The status document's JSON, written by generated code rather than by reflection.</summary>
    [JsonSourceGenerationOptions(JsonSerializerDefaults.Web, WriteIndented = true)]
    [JsonSerializable(typeof(StatusDocument))]
    private sealed partial class StatusJson : JsonSerializerContext;
}
