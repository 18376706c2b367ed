using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Prometheus;
using SampleBackend.Rpc;

namespace SampleBackend;

/// <summary>Builds a sample backend instance; used by Program and by the tests.</summary>
public static class BackendApp
{
    public static WebApplication Create(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateSlimBuilder(args);
        var config = builder.Configuration;
        var name = config["name"] ?? config["BACKEND_NAME"] ?? Environment.MachineName;
        var state = new BackendState(
            name,
            healthy: !config.GetValue("unhealthy", false),
            delayMs: config.GetValue("delay-ms", 0));
        builder.Services.AddSingleton(state);
        builder.Services.AddSingleton<BackendMetrics>();
        builder.Services.AddSingleton<Workload>();
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(0, BackendJsonContext.Default));
        var listeners = BackendListeners.From(config);
        if (listeners is not null)
        {
            builder.Services.AddSingleton(listeners);
            builder.WebHost.ConfigureKestrel(listeners.Configure);
            // Kestrel warns that endpoints bound in code override --urls, though the same URLs are bound here.
            builder.Logging.AddFilter("Microsoft.AspNetCore.Server.Kestrel", LogLevel.Error);
        }

        var grpc = listeners?.ServesGrpc == true;
        if (grpc)
        {
            AddGrpc(builder.Services, state);
        }

        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        // A backend made unhealthy on purpose would log an error for every gRPC health probe.
        builder.Logging.AddFilter("Microsoft.Extensions.Diagnostics.HealthChecks", LogLevel.None);
        configure?.Invoke(builder);

        var app = builder.Build();
        app.Use(AdminListener.Guard);
        app.Use(Tag(state, app.Services.GetRequiredService<BackendMetrics>()));
        app.UseWebSockets();
        Map(app, state);
        if (grpc)
        {
            MapGrpc(app);
        }

        return app;
    }

    /// <summary>
    /// The gRPC services: the standard grpc.health.v1.Health, answering from the same switch as <c>/health</c>,
    /// and the sample ones; only with --grpc-urls, so a backend without it starts and routes as lean as before.
    /// They answer on any HTTP/2 connection, which in practice is the --grpc-urls port.
    /// </summary>
    private static void AddGrpc(IServiceCollection services, BackendState state)
    {
        services.AddGrpc();
        services.AddGrpcHealthChecks(o => o.UseHealthChecksCache = false)
            .AddCheck("backend", () => state.Healthy ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy("made unhealthy through /admin/unhealthy"));
    }

    private static void MapGrpc(WebApplication app)
    {
        app.MapGrpcService<GreeterService>();
        app.MapGrpcService<CounterService>();
        app.MapGrpcHealthChecksService();
    }

    /// <summary>The gRPC health service's path prefix: its probes are not workload, like <c>/health</c>.</summary>
    private const string GrpcHealthPath = "/grpc.health.v1.Health";

    /// <summary>Stamps X-Backend on every response and counts and slows workload requests.</summary>
    private static Func<HttpContext, RequestDelegate, Task> Tag(BackendState state, BackendMetrics metrics)
    {
        var header = new Microsoft.Extensions.Primitives.StringValues(state.Name);
        return async (context, next) =>
        {
            context.Response.Headers["X-Backend"] = header;
            var path = context.Request.Path;
            // The header is also the gRPC initial metadata "x-backend" (HTTP/2 sends header names in lower case).
            var workload = !path.StartsWithSegments("/health") && !path.StartsWithSegments("/metrics") && !path.StartsWithSegments("/admin")
                && !path.StartsWithSegments(GrpcHealthPath);
            if (workload)
            {
                state.CountReceived();
            }

            if (workload && state.DelayMs > 0)
            {
                await Task.Delay(state.DelayMs, context.RequestAborted);
            }

            if (workload && state.FailStatus != 0)
            {
                context.Response.StatusCode = state.FailStatus;
                return;
            }

            await next(context);
            if (workload)
            {
                state.CountServed();
                metrics.Count(context.Response.StatusCode);
            }
        };
    }

    private static void Map(WebApplication app, BackendState state)
    {
        var hello = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new Hello(state.Name, $"Hello from {state.Name}"), BackendJsonContext.Default.Hello));
        app.MapGet("/", () => Results.Bytes(hello, "application/json"));
        app.MapGet("/health", (BackendState s) => s.Healthy
            ? Results.Text("healthy\n")
            : Results.Text("unhealthy\n", statusCode: StatusCodes.Status503ServiceUnavailable));

        var api = app.MapGroup("/api");
        api.MapGet("/products", (Workload w, int? limit) => Results.Ok(w.Products(limit ?? 20)));
        api.MapGet("/report", (Workload w, int? top) => Results.Ok(w.Report(top ?? 10)));
        // PUT too: an idempotent write, which the balancer may replay on another backend.
        api.MapMethods("/upload", ["POST", "PUT"], async (HttpRequest request, CancellationToken ct) =>
        {
            if (!request.HasFormContentType)
            {
                return Results.BadRequest("expected multipart/form-data\n");
            }

            var form = await request.ReadFormAsync(ct);
            return Results.Ok(await Workload.ReceiveAsync(form.Files, ct));
        }).DisableAntiforgery();
        app.MapGet("/delay/{ms:int}", async (int ms, BackendState s, CancellationToken ct) =>
        {
            await Task.Delay(Math.Clamp(ms, 0, 120_000), ct);
            return Results.Ok(new Delayed(s.Name, ms));
        });

        // A WebSocket that echoes every message back, for checking upgrades through the balancer.
        app.Map("/ws/echo", async (HttpContext context) =>
        {
            if (!context.WebSockets.IsWebSocketRequest)
            {
                context.Response.StatusCode = StatusCodes.Status400BadRequest;
                return;
            }

            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            var buffer = new byte[16 * 1024];
            while (true)
            {
                var received = await socket.ReceiveAsync(buffer, context.RequestAborted);
                if (received.MessageType == System.Net.WebSockets.WebSocketMessageType.Close)
                {
                    await socket.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, null, context.RequestAborted);
                    return;
                }

                await socket.SendAsync(buffer.AsMemory(0, received.Count), received.MessageType, received.EndOfMessage, context.RequestAborted);
            }
        });

        // Run-time controls for demos, tests and benchmarks: answered only on the --admin-urls listener
        // (AdminListener), never on the port a balancer forwards to.
        var admin = app.MapGroup("/admin");
        admin.MapGet("/stats", (BackendState s) => Results.Ok(new Stats(s.Name, s.Served, s.Healthy, s.DelayMs)));
        admin.MapPost("/healthy", (BackendState s) => { s.Healthy = true; return Results.Ok(new Stats(s.Name, s.Served, s.Healthy, s.DelayMs)); });
        admin.MapPost("/unhealthy", (BackendState s) => { s.Healthy = false; return Results.Ok(new Stats(s.Name, s.Served, s.Healthy, s.DelayMs)); });
        admin.MapPost("/fail", (BackendState s, int status) =>
        {
            if (status is not (0 or (>= 400 and <= 599)))
            {
                return Results.BadRequest("status must be 0 (off) or from 400 to 599\n");
            }

            s.FailStatus = status;
            return Results.Ok(new Stats(s.Name, s.Served, s.Healthy, s.DelayMs));
        });
        admin.MapPost("/delay", (BackendState s, int ms) =>
        {
            s.DelayMs = Math.Clamp(ms, 0, 120_000);
            return Results.Ok(new Stats(s.Name, s.Served, s.Healthy, s.DelayMs));
        });

        var metrics = app.Services.GetRequiredService<BackendMetrics>();
        app.UseMetricServer("/metrics", metrics.Registry);
    }
}

public sealed record Hello(string Backend, string Message);

public sealed record Delayed(string Backend, int DelayedMs);

public sealed record Stats(string Backend, long Served, bool Healthy, int DelayMs);
