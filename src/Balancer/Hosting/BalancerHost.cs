using Balancer.AccessLog;
using Balancer.Configuration;
using Balancer.Discovery;
using Balancer.Headers;
using Balancer.Health;
using Balancer.LoadBalancing;
using Balancer.Logging;
using Balancer.Management;
using Balancer.RateLimiting;
using Balancer.Readiness;
using Balancer.Resilience;
using Balancer.Runtime;
using Balancer.Telemetry;
using Balancer.Tls;
using Microsoft.Extensions.Configuration.EnvironmentVariables;
using Microsoft.Extensions.Configuration.Memory;
using Microsoft.Extensions.Configuration.Json;
using Microsoft.Extensions.Options;

namespace Balancer.Hosting;

/// <summary>Builds the balancer application; used by <c>Program</c>, the tests and the benchmarks alike.</summary>
public static class BalancerHost
{
    /// <summary>
    /// Creates the balancer for <paramref name="configPath"/>. Throws <see cref="InvalidConfigFileException"/>
    /// when the file is missing or invalid.
    /// </summary>
    public static WebApplication Create(string configPath, string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = args,
            ContentRootPath = AppContext.BaseDirectory,
        });

        // Quiet defaults, below everything else so a "Logging" section in the config file overrides them:
        // ASP.NET Core and YARP log every request at Information, which costs throughput and buries
        // what operators need to see.
        builder.Configuration.Sources.Insert(0, new MemoryConfigurationSource
        {
            InitialData = new Dictionary<string, string?>
            {
                ["Logging:LogLevel:Default"] = "Information",
                ["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning",
                ["Logging:LogLevel:Yarp"] = "Warning",
                // YARP logs every failed forward with its stack trace, client faults included: a client sending
                // broken bodies could fill the disk. ProxyErrorLog writes one short, rate-limited line instead.
                ["Logging:LogLevel:Yarp.ReverseProxy.Forwarder.HttpForwarder"] = "None",
                // ASP.NET Core starts an Activity for every request whenever this category logs at any level,
                // even with no tracer listening: about a fifth of the bytes a proxied request allocates. It only
                // writes the per-request "Request starting/finished" lines, which operators do not want here.
                // With tracing on, OpenTelemetry's listener still gets its activities.
                ["Logging:LogLevel:Microsoft.AspNetCore.Hosting.Diagnostics"] = "None",
            },
        });

        var tracker = new ConfigReloadTracker(TimeProvider.System);
        builder.Configuration.AddBalancerConfigFile(configPath, tracker);
        builder.Services.AddSingleton(tracker);
        builder.Services.AddSingleton(TimeProvider.System);

        var errors = ConfigValidator.Validate(builder.Configuration);
        if (errors.Count > 0)
        {
            throw new InvalidConfigFileException(configPath, errors);
        }

        var tlsOptions = builder.Configuration.GetSection($"{BalancerOptions.SectionName}:{TlsOptions.SectionName}").Get<TlsOptions>() ?? new();
        var (tls, tlsErrors) = TlsStartup.Load(tlsOptions, Path.GetDirectoryName(Path.GetFullPath(configPath))!, TimeProvider.System.GetUtcNow());
        if (tlsErrors.Count > 0)
        {
            throw new InvalidConfigFileException(configPath, tlsErrors);
        }

        builder.Services.AddBalancerTls(tls);
        InlineIoScheduling.Apply(builder);
        AssemblyPreload.Run();
        builder.Services.AddOptions<BalancerOptions>().Bind(builder.Configuration.GetSection(BalancerOptions.SectionName));
        // Read when the server and the host are built, so settings added by `configure` below count too.
        var configuration = builder.Configuration;
        BalancerOptions Startup() => configuration.GetSection(BalancerOptions.SectionName).Get<BalancerOptions>() ?? new();
        builder.Services.AddGracefulShutdown(() => Startup().ShutdownTimeout);
        builder.Services.AddHostedService<GarbageCollectorLog>();
        builder.Services.AddHostedService<NativeHeapTrim>();
        // Before the listeners start: the first real Down then compiles none of its path on the thread judging its probe.
        builder.Services.AddSingleton<HealthPathWarmUp>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<HealthPathWarmUp>());
        builder.Services.AddReadiness();
        var listeners = new Listeners();
        builder.Services.AddSingleton(listeners);
        builder.Services.AddSingleton<ProxyConnections>();
        IEnumerable<string> ProxyListen()
        {
            var listen = configuration.GetSection($"{BalancerOptions.SectionName}:Listen");
            return listen.Value is null && !listen.GetChildren().Any() ? [Startup().Listen] : ListenAddress.Read(listen).Select(l => l.Text ?? string.Empty);
        }

        builder.Services.AddBalancerTransport();
        builder.WebHost.ConfigureKestrel(kestrel => listeners.Configure(
            kestrel,
            Startup(),
            ProxyListen(),
            kestrel.ApplicationServices.GetRequiredService<ProxyConnections>(),
            kestrel.ApplicationServices.GetRequiredService<CertificateStore>,
            kestrel.ApplicationServices.GetRequiredService<BackendSockets>(),
            kestrel.ApplicationServices.GetRequiredService<ILoggerFactory>().CreateLogger<Listeners>()));

        // Read once: it decides whether the per-request transforms exist at all.
        var countRequests = builder.Configuration.GetValue(MetricsOptions.EnabledKey, true);
        builder.Services.AddSpreadHealthMonitor();
        ProxyConfigurationView.LoadFromConfigFile(builder.Services.AddReverseProxy(), builder.Configuration).AddBalancerMetrics(countRequests).AddBalancerDiscovery();
        builder.Services.AddEphemeralDataProtection();
        builder.Services.AddBalancerPolicies();
        builder.Services.AddBalancerHeaders();
        builder.Services.AddSingleton<Yarp.ReverseProxy.Configuration.IConfigChangeListener, ReloadListener>();
        builder.Services.AddHostedService<ConfigReloadLogger>();
        builder.Services.AddBalancerManagement();
        builder.Services.AddBalancerHealth();
        builder.Services.AddBalancerResilience();
        builder.Services.AddBalancerRuntime();
        builder.Services.AddBalancerTracing(builder.Configuration);
        builder.Services.AddBalancerAccessLog();
        builder.Services.AddBalancerRateLimits();

        configure?.Invoke(builder);

        var app = builder.Build();
        // The scrape-time series (up, policy, reloads) register with it: they must exist from start-up even
        // when no request is counted to create it.
        app.Services.GetRequiredService<ProxyMetrics>();
        app.Services.GetRequiredService<CertificateMetrics>();
        app.Services.StartBalancerRuntime();
        if (countRequests)
        {
            app.Services.GetRequiredService<ProtocolMetrics>();
        }

        SkipImplicitAuthorization(app);
        app.MapWhen(Listeners.IsManagement, ManagementApp.Configure);
        app.UseMiddleware<TlsPolicyMiddleware>();
        app.UseMiddleware<LeavingConnectionMiddleware>();
        app.UseBalancerServerSpans();
        app.UseBalancerAccessLog();
        app.UseMiddleware<ConnectMethodMiddleware>();
        app.UseMiddleware<RequestBodyLimitMiddleware>();
        app.UseRouting();
        app.MapReverseProxy(proxy =>
        {
            if (countRequests)
            {
                proxy.UseMiddleware<ProtocolMetricsMiddleware>();
            }

            proxy.UseBalancerRateLimits();
            proxy.UseMiddleware<Grpc.GrpcCallMiddleware>(countRequests);
            proxy.UseMiddleware<NoAvailableDestinationMiddleware>();
            // Before affinity and load balancing: each retry is a fresh pick among the destinations not tried.
            proxy.UseMiddleware<RetryMiddleware>();
            proxy.UseSessionAffinity();
            proxy.UseLoadBalancing();
            proxy.UseBalancerAttemptSpans();
            proxy.UsePassiveHealthChecks();
        });
        return app;
    }

    /// <summary>
    /// The key <c>UseAuthorization</c> sets in the application's properties; WebApplication adds an authorization
    /// middleware of its own in front of the whole pipeline only when it is absent.
    /// </summary>
    internal const string AuthorizationMiddlewareSetKey = "__AuthorizationMiddlewareSet";

    /// <summary>
    /// Keeps WebApplication from adding its implicit authorization middleware (it does so whenever the authorization
    /// services are registered, as YARP's route policies need). It would run in front of <c>UseRouting</c> below,
    /// before any endpoint is chosen, where it can never authorize anything; all it adds is an async step to every
    /// request.
    /// </summary>
    private static void SkipImplicitAuthorization(IApplicationBuilder app) => app.Properties[AuthorizationMiddlewareSetKey] = true;

    /// <summary>
    /// Puts the validated config file where appsettings.json would be: above the defaults, below
    /// environment variables and the command line, so that <c>--Balancer:Listen ...</c> still wins.
    /// </summary>
    private static void AddBalancerConfigFile(this ConfigurationManager configuration, string path, ConfigReloadTracker tracker)
    {
        var sources = configuration.Sources;
        for (var i = sources.Count - 1; i >= 0; i--)
        {
            if (sources[i] is JsonConfigurationSource)
            {
                sources.RemoveAt(i);
            }
        }

        var index = 0;
        while (index < sources.Count && sources[index] is not EnvironmentVariablesConfigurationSource)
        {
            index++;
        }

        // Environment variables are added twice (ASPNETCORE_ and DOTNET_ prefixed first); insert after
        // those prefixed ones only if the unprefixed source follows, which it always does in CreateBuilder.
        var lastEnv = index;
        for (var i = index; i < sources.Count; i++)
        {
            if (sources[i] is EnvironmentVariablesConfigurationSource { Prefix: null or "" })
            {
                lastEnv = i;
                break;
            }
        }

        // The setting as it stands when a change arrives: the last good file's, or an environment variable's.
        sources.Insert(lastEnv, new ValidatedJsonConfigurationSource(path, tracker, TimeProvider.System)
        {
            ReloadNice = () => int.TryParse(configuration[$"{BalancerOptions.SectionName}:{nameof(BalancerOptions.ReloadNice)}"], out var nice) && nice is >= 0 and <= 19 ? nice : LowPriorityThread.DefaultNice,
        });
    }
}
