namespace Balancer.Hosting;

/// <summary>
/// Says at start which garbage collector the process got, as the runtime reports it: the GC settings come from
/// the build (runtimeconfig.json, or compiled into the Native AOT executable), environment variables can
/// override them, and the runtime picks workstation GC over server GC when the process may use one CPU only.
/// The peak memory under load follows from these (docs/benchmarks.md), so an operator can check them here.
/// </summary>
internal sealed partial class GarbageCollectorLog(ILogger<GarbageCollectorLog> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var settings = GC.GetConfigurationVariables();
        LogSettings(
            logger,
            settings.TryGetValue("ServerGC", out var server) && server is true ? "server" : "workstation",
            settings.TryGetValue("HeapCount", out var heaps) ? Convert.ToInt64(heaps, System.Globalization.CultureInfo.InvariantCulture) : 1,
            settings.TryGetValue("ConcurrentGC", out var concurrent) && concurrent is true ? "on" : "off",
            settings.TryGetValue("GCGen0MaxBudget", out var gen0) ? Convert.ToInt64(gen0, System.Globalization.CultureInfo.InvariantCulture) / (1024 * 1024) : 0);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(EventId = 1102, Level = LogLevel.Information,
        Message = "Garbage collector: {Mode} ({Heaps} heaps at most), background collections {Background}, gen0 budget at most {Gen0MaxBudgetMb} MB")]
    private static partial void LogSettings(ILogger logger, string mode, long heaps, string background, long gen0MaxBudgetMb);
}
