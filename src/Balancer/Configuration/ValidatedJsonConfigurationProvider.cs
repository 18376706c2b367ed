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
    private int _reloadState;
    private volatile ChildKeys? _children;

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

        SetData(result.Data!);
        _stamp = Stamp();
        _started = true;
        StartWatching();
    }

    /// <summary>
    /// The children of a section from an index built once per file. The base class scans every key for every
    /// section asked about, and YARP asks about each destination's metadata when it reads a config: with
    /// 10,000 destinations that is quadratic, several seconds of CPU on every reload.
    /// </summary>
    public override IEnumerable<string> GetChildKeys(IEnumerable<string> earlierKeys, string? parentPath)
    {
        var index = _children ??= new ChildKeys(Data);
        var own = index.Of(parentPath);
        List<string> keys = [.. earlierKeys];
        if (keys.Count == 0)
        {
            // Already in the order the base class returns.
            return own;
        }

        keys.AddRange(own);
        keys.Sort(ConfigurationKeyComparer.Instance);
        return keys;
    }

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

    private void SetData(IDictionary<string, string?> data)
    {
        var children = new ChildKeys(data);
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
            var result = ConfigFile.Read(_source.Path);
            if (!result.IsValid)
            {
                _source.Tracker.Rejected(string.Join("; ", result.Errors));
                return;
            }

            SetData(result.Data!);
            _source.Tracker.FileAccepted();
        }

        OnReload();
    }

    /// <summary>Each section's immediate children, sorted as configuration keys are.</summary>
    /// <remarks>
    /// Built on every reload from every key of the file, so it looks sections up by span rather than cutting a
    /// string for each ancestor of each key, and keeps one string per distinct name ("Address", "Weight"), not
    /// one per key: at 10,000 destinations the index is built several times faster and adds a fraction of the
    /// garbage a reload leaves for the GC.
    /// </remarks>
    private sealed class ChildKeys
    {
        private readonly Dictionary<string, string[]> _children;
        private readonly string[] _root;

        public ChildKeys(IDictionary<string, string?> data)
        {
            var lists = new Dictionary<string, List<string>>(StringComparer.OrdinalIgnoreCase);
            var sections = lists.GetAlternateLookup<ReadOnlySpan<char>>();
            var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            var known = names.GetAlternateLookup<ReadOnlySpan<char>>();
            var root = new List<string>();
            foreach (var key in data.Keys)
            {
                // Every ancestor of the key lists the segment below it: a:b:c gives (root) -> a, a -> b, a:b -> c.
                var start = 0;
                while (true)
                {
                    var end = key.IndexOf(ConfigurationPath.KeyDelimiter, start, StringComparison.Ordinal);
                    var segment = end < 0 ? key.AsSpan(start) : key.AsSpan(start, end - start);
                    List<string>? list;
                    if (start == 0)
                    {
                        list = root;
                    }
                    else if (!sections.TryGetValue(key.AsSpan(0, start - 1), out list))
                    {
                        list = new List<string>(2);
                        lists[key[..(start - 1)]] = list;
                    }

                    if (!known.TryGetValue(segment, out var name))
                    {
                        name = end < 0 ? key[start..] : key[start..end];
                        names.Add(name);
                    }

                    // A section lists a child once per key below it; duplicates go when the list is sorted.
                    if (list.Count == 0 || !string.Equals(list[^1], name, StringComparison.OrdinalIgnoreCase))
                    {
                        list.Add(name);
                    }

                    if (end < 0)
                    {
                        break;
                    }

                    start = end + 1;
                }
            }

            _root = Sorted(root);
            _children = new Dictionary<string, string[]>(lists.Count, StringComparer.OrdinalIgnoreCase);
            foreach (var (parent, list) in lists)
            {
                _children[parent] = Sorted(list);
            }
        }

        public string[] Of(string? parentPath) => parentPath is null ? _root : _children.TryGetValue(parentPath, out var children) ? children : [];

        private static string[] Sorted(List<string> list)
        {
            list.Sort(ConfigurationKeyComparer.Instance);
            var kept = 0;
            for (var i = 0; i < list.Count; i++)
            {
                if (kept == 0 || !string.Equals(list[kept - 1], list[i], StringComparison.OrdinalIgnoreCase))
                {
                    list[kept++] = list[i];
                }
            }

            list.RemoveRange(kept, list.Count - kept);
            return [.. list];
        }
    }
}
