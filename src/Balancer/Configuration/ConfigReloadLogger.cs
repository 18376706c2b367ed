namespace Balancer.Configuration;

/// <summary>Writes one log line per config reload outcome.</summary>
internal sealed partial class ConfigReloadLogger : IHostedService
{
    private readonly ConfigReloadTracker _tracker;
    private readonly ILogger<ConfigReloadLogger> _logger;

    public ConfigReloadLogger(ConfigReloadTracker tracker, ILogger<ConfigReloadLogger> logger)
    {
        _tracker = tracker;
        _logger = logger;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _tracker.Recorded += OnRecorded;
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _tracker.Recorded -= OnRecorded;
        return Task.CompletedTask;
    }

    private void OnRecorded(ConfigReload reload)
    {
        if (reload.Success)
        {
            LogApplied(_logger);
        }
        else
        {
            LogRejected(_logger, reload.Error ?? "unknown");
        }
    }

    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Config reloaded and applied")]
    private static partial void LogApplied(ILogger logger);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Error, Message = "Config reload rejected, the previous config keeps serving: {Reason}")]
    private static partial void LogRejected(ILogger logger, string reason);
}
