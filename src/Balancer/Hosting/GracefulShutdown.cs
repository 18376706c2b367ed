using Balancer.Configuration;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy;

namespace Balancer.Hosting;

/// <summary>
/// Graceful shutdown: on SIGTERM (or Ctrl-C) Kestrel stops accepting connections, closes idle ones and
/// lets requests in flight finish, for at most <see cref="BalancerOptions.ShutdownTimeout"/>; then the
/// process exits 0. This sets the bound and says in the log what the drain is waiting for.
/// </summary>
internal static partial class GracefulShutdown
{
    public static void AddGracefulShutdown(this IServiceCollection services, Func<TimeSpan> timeout)
    {
        services.Configure<HostOptions>(host => host.ShutdownTimeout = timeout());
        services.AddHostedService<Logger>();
    }

    private sealed partial class Logger(IHostApplicationLifetime lifetime, IProxyStateLookup proxy, IOptions<HostOptions> host, ILogger<Logger> logger) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            // Registered for the process's lifetime: the lifetime's tokens are never reused.
            lifetime.ApplicationStopping.Register(() => LogDraining(logger, InFlight(), host.Value.ShutdownTimeout.TotalSeconds));
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        /// <summary>Requests being forwarded now, over every destination (YARP's own counts).</summary>
        private int InFlight()
        {
            var total = 0;
            foreach (var cluster in proxy.GetClusters())
            {
                foreach (var destination in cluster.Destinations.Values)
                {
                    total += destination.ConcurrentRequestCount;
                }
            }

            return total;
        }

        [LoggerMessage(EventId = 1101, Level = LogLevel.Information, Message = "Shutting down: no new connections; waiting up to {TimeoutSeconds} s for {InFlight} requests in flight to finish")]
        private static partial void LogDraining(ILogger logger, int inFlight, double timeoutSeconds);
    }
}
