using Microsoft.Extensions.Configuration;

namespace Balancer.Configuration;

/// <summary>Thrown at start-up when the config file is missing or invalid.</summary>
public sealed class InvalidConfigFileException(string path, IReadOnlyList<string> errors)
    : Exception($"Invalid config file {path}:{Environment.NewLine}  {string.Join(Environment.NewLine + "  ", errors)}")
{
    public string FilePath { get; } = path;

    public IReadOnlyList<string> Errors { get; } = errors;
}

internal sealed class ValidatedJsonConfigurationProvider : ConfigurationProvider, IIndexedKeys, IDisposable
{
    private readonly ValidatedJsonConfigurationSource _source;
    private readonly Lock _reloadLock = new();
    private const string ConfigMapData = "..data";
    private FileSystemWatcher? _watcher;
    private ITimer? _debounce;
    private ITimer? _poll;
    private (DateTime, long) _stamp;
    private bool _started;
    private int _reloadState;
    private volatile ConfigChildKeys? _children;

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

        SetData(result.Data!, result.Children);
        _stamp = Stamp();
        _started = true;
        StartWatching();
    }

    /// <summary>
    /// The children of a section from an index built once per file. The base class scans every key for every
    /// section asked about, and YARP asks about each destination's metadata when it reads a config: with
    /// 10,000 destinations that is quadratic, several seconds of CPU on every reload.
    /// </summary>
    public override IEnumerable<string> GetChildKeys(IEnumerable<string> earlierKeys, string? parentPath) =>
        (_children ??= new ConfigChildKeys(Data)).Of(earlierKeys, parentPath);

    bool IIndexedKeys.TryGet(ReadOnlySpan<char> key, out string? value) => IndexedKeys.TryGet(Data, key, out value);

    string? IIndexedKeys.Spelled(ReadOnlySpan<char> path) => IndexedKeys.Spelled(Data, _children ??= new ConfigChildKeys(Data), path);

    string[] IIndexedKeys.ChildrenOf(string? parentPath) => (_children ??= new ConfigChildKeys(Data)).Of(parentPath);

    bool IIndexedKeys.HasChildren(ReadOnlySpan<char> path) => (_children ??= new ConfigChildKeys(Data)).HasChildren(path);

    public override void Set(string key, string? value)
    {
        base.Set(key, value);
        _children = null;
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
        _debounce = _source.Time.CreateTimer(_ => QueueReload(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
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

    private void SetData(IDictionary<string, string?> data, ConfigChildKeys? children)
    {
        // The index the file was validated with, when it came with one: building it is a good part of a reload.
        children ??= new ConfigChildKeys(data);
        Data = data;
        _children = children;
    }

    /// <summary>
    /// Reads and applies the file on a low-priority thread of its own rather than on the timer's pool thread: with
    /// thousands of destinations, reading, validating and YARP's rebuilding take a second or more of CPU, which
    /// would otherwise be taken from the threads serving requests. One reload runs at a time; a change that
    /// arrives meanwhile is read when it ends.
    /// </summary>
    private void QueueReload()
    {
        while (true)
        {
            // 0 idle, 1 reloading, 2 reloading and changed again since it began.
            var state = Volatile.Read(ref _reloadState);
            if (state == 2)
            {
                return;
            }

            if (Interlocked.CompareExchange(ref _reloadState, state + 1, state) == state)
            {
                if (state == 0)
                {
                    LowPriorityThread.Start("config reload", _source.ReloadNice(), ReloadUntilSettled);
                }

                return;
            }
        }
    }

    private void ReloadUntilSettled()
    {
        while (true)
        {
            ReloadFromFile();
            if (Interlocked.CompareExchange(ref _reloadState, 0, 1) == 1)
            {
                return;
            }

            Volatile.Write(ref _reloadState, 1);
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
            var result = ConfigFile.Read(_source.Path, Data, _children);
            if (!result.IsValid)
            {
                _source.Tracker.Rejected(string.Join("; ", result.Errors));
                return;
            }

            SetData(result.Data!, result.Children);
            _source.Tracker.FileAccepted();
        }

        OnReload();
    }
}
