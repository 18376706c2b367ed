namespace Balancer.Configuration;

/// <summary>The outcome of one config reload.</summary>
public sealed record ConfigReload(DateTimeOffset Time, bool Success, string? Error);

/// <summary>
/// Remembers config reload outcomes for the status API, the metrics and the log. A reload can fail in
/// two places: our own file validation, or YARP's when it applies the routes and clusters.
/// </summary>
public sealed class ConfigReloadTracker(TimeProvider time)
{
    private int _awaitingApply;
    private long _successes;
    private long _failures;

    /// <summary>Raised after every recorded outcome.</summary>
    public event Action<ConfigReload>? Recorded;

    public ConfigReload? Last { get; private set; }

    public long Successes => Interlocked.Read(ref _successes);

    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>The file passed validation and is being handed to YARP.</summary>
    public void FileAccepted() => Volatile.Write(ref _awaitingApply, 1);

    /// <summary>YARP applied a configuration. Start-up loads are not reloads and are not counted.</summary>
    public void Applied()
    {
        if (Interlocked.Exchange(ref _awaitingApply, 0) == 1)
        {
            Interlocked.Increment(ref _successes);
            Record(new ConfigReload(time.GetUtcNow(), true, null));
        }
    }

    /// <summary>Something reloaded outside the config file (a replaced certificate) and serves now.</summary>
    public void Reloaded()
    {
        Interlocked.Increment(ref _successes);
        Record(new ConfigReload(time.GetUtcNow(), true, null));
    }

    /// <summary>The reload was rejected, by our validation or by YARP; the previous config keeps serving.</summary>
    public void Rejected(string error)
    {
        Volatile.Write(ref _awaitingApply, 0);
        Interlocked.Increment(ref _failures);
        Record(new ConfigReload(time.GetUtcNow(), false, error));
    }

    private void Record(ConfigReload reload)
    {
        Last = reload;
        Recorded?.Invoke(reload);
    }
}
