using System.Runtime.InteropServices;
using Balancer.Configuration;
using Microsoft.Extensions.Options;

namespace Balancer.Readiness;

/// <summary>
/// Takes SIGTERM, SIGINT and SIGQUIT in place of the console lifetime: readiness turns at once, the proxy
/// keeps serving for <see cref="ShutdownOptions.DrainDelay"/> so that keepalived or Kubernetes can move
/// clients to a peer, and only then does the host stop (stop accepting, drain for <c>ShutdownTimeout</c>).
/// A second signal during the delay stops at once. Stopping the host from code (tests, embedding) skips the
/// delay: only a signal means "leave gracefully".
/// </summary>
internal sealed partial class DrainingLifetime(
    IHostApplicationLifetime lifetime,
    InstanceReadiness readiness,
    IOptions<BalancerOptions> options,
    TimeProvider time,
    ILogger<DrainingLifetime> logger) : IHostLifetime, IDisposable
{
    private readonly List<PosixSignalRegistration> _registrations = [];
    private ITimer? _stopTimer;
    private int _signals;

    public Task WaitForStartAsync(CancellationToken cancellationToken)
    {
        foreach (var signal in new[] { PosixSignal.SIGTERM, PosixSignal.SIGINT, PosixSignal.SIGQUIT })
        {
            _registrations.Add(PosixSignalRegistration.Create(signal, OnSignal));
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose()
    {
        foreach (var registration in _registrations)
        {
            registration.Dispose();
        }

        _stopTimer?.Dispose();
    }

    private void OnSignal(PosixSignalContext context)
    {
        // The host stops the process itself, after the drain.
        context.Cancel = true;
        var delay = options.Value.Shutdown.DrainDelay;
        if (Interlocked.Increment(ref _signals) > 1 || delay <= TimeSpan.Zero)
        {
            readiness.Leave("shutting down");
            lifetime.StopApplication();
            return;
        }

        readiness.Leave("shutting down: draining before exit");
        LogLeaving(logger, context.Signal, delay.TotalSeconds);
        _stopTimer = time.CreateTimer(static state => ((IHostApplicationLifetime)state!).StopApplication(), lifetime, delay, Timeout.InfiniteTimeSpan);
    }

    [LoggerMessage(EventId = 1301, Level = LogLevel.Information, Message = "{Signal} received: /readyz answers 503; still serving for {DrainDelaySeconds} s (Balancer:Shutdown:DrainDelay) so that clients move to a peer, then draining")]
    private static partial void LogLeaving(ILogger logger, PosixSignal signal, double drainDelaySeconds);
}
