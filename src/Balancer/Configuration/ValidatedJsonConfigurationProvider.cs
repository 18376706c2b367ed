using Microsoft.Extensions.Configuration;

namespace Balancer.Configuration;

/// <summary>Thrown at start-up when the config file is missing or invalid.</summary>
public sealed class InvalidConfigFileException(string path, IReadOnlyList<string> errors)
    : Exception($"Invalid config file {path}:{Environment.NewLine}  {string.Join(Environment.NewLine + "  ", errors)}")
{
    public string FilePath { get; } = path;

    public IReadOnlyList<string> Errors { get; } = errors;
}

internal sealed class ValidatedJsonConfigurationProvider : ConfigurationProvider, IDisposable
{
    private readonly ValidatedJsonConfigurationSource _source;
    private readonly Lock _reloadLock = new();
    private const string ConfigMapData = "..data";
    private FileSystemWatcher? _watcher;
    private ITimer? _debounce;
    private ITimer? _poll;
    private (DateTime, long) _stamp;
    private bool _started;

    public ValidatedJsonConfigurationProvider(ValidatedJsonConfigurationSource source) => _source = source;

    public override void Load()
    {
        if (_started)
        {
            // ConfigurationRoot.Reload() lands here; treat it like a file change.
            ReloadFromFile();
            return;
        }

        var result = ConfigFile.Read(_source.Path);
        if (!result.IsValid)
        {
            throw new InvalidConfigFileException(_source.Path, result.Errors);
        }

        Data = result.Data!;
        _stamp = Stamp();
        _started = true;
        StartWatching();
    }

    public void Dispose()
    {
        _watcher?.Dispose();
        _debounce?.Dispose();
        _poll?.Dispose();
    }

    private void StartWatching()
    {
        var directory = Path.GetDirectoryName(_source.Path)!;
        _debounce = _source.Time.CreateTimer(_ => ReloadFromFile(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        try
        {
            // The directory is watched, not the file, so that delete-and-recreate saves are seen too.
            _watcher = new FileSystemWatcher(directory) { NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.FileName | NotifyFilters.Size | NotifyFilters.CreationTime };
            var name = Path.GetFileName(_source.Path);
            FileSystemEventHandler onChange = (_, e) =>
            {
                if (string.Equals(e.Name, name, StringComparison.Ordinal) || e.Name == ConfigMapData)
                {
                    Schedule();
                }
            };
            _watcher.Changed += onChange;
            _watcher.Created += onChange;
            _watcher.Deleted += onChange;
            _watcher.Renamed += (_, e) =>
            {
                // A ConfigMap volume changes the file by renaming a new link over its ..data link.
                if (e.Name == name || e.OldName == name || e.Name == ConfigMapData)
                {
                    Schedule();
                }
            };
            _watcher.EnableRaisingEvents = true;
        }
        catch (Exception e) when (e is IOException or ArgumentException or PlatformNotSupportedException)
        {
            // Polling below still notices changes, only later.
            _watcher?.Dispose();
            _watcher = null;
        }

        _poll = _source.Time.CreateTimer(_ => Poll(), null, _source.PollInterval, _source.PollInterval);
    }

    private void Schedule() => _debounce?.Change(_source.Debounce, Timeout.InfiniteTimeSpan);

    private void Poll()
    {
        if (Stamp() != _stamp)
        {
            Schedule();
        }
    }

    private (DateTime, long) Stamp()
    {
        try
        {
            var info = new FileInfo(_source.Path);
            // The content behind links (a ConfigMap mounts the file as a link through ..data), not the link itself.
            if (info.LinkTarget is not null)
            {
                info = info.ResolveLinkTarget(returnFinalTarget: true) as FileInfo ?? info;
            }

            return info.Exists ? (info.LastWriteTimeUtc, info.Length) : default;
        }
        catch (IOException)
        {
            return default;
        }
    }

    private void ReloadFromFile()
    {
        lock (_reloadLock)
        {
            var stamp = Stamp();
            if (stamp == _stamp)
            {
                return;
            }

            if (stamp == default)
            {
                // Missing for now: an editor's delete-then-write, or a symlink swap in progress. Keep
                // serving; the next change notification or poll picks up the new file.
                return;
            }

            _stamp = stamp;
            var result = ConfigFile.Read(_source.Path);
            if (!result.IsValid)
            {
                _source.Tracker.Rejected(string.Join("; ", result.Errors));
                return;
            }

            Data = result.Data!;
            _source.Tracker.FileAccepted();
        }

        OnReload();
    }
}
