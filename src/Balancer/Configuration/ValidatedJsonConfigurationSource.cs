using Microsoft.Extensions.Configuration;

namespace Balancer.Configuration;

/// <summary>
/// A JSON file configuration source that only ever exposes a complete, validated file.
/// </summary>
/// <remarks>
/// .NET's own JSON file provider empties its data when a reloaded file does not parse, and signals a
/// reload with no data at all when the file is briefly missing (editors that delete and rewrite, a
/// ConfigMap symlink swap): YARP bound to it then serves 404 for everything. This source reads, parses and
/// validates the new file first and swaps it in only when it is good; otherwise the last good config
/// keeps serving and the rejection is recorded.
/// </remarks>
public sealed class ValidatedJsonConfigurationSource(string path, ConfigReloadTracker tracker, TimeProvider time) : IConfigurationSource
{
    public string Path { get; } = System.IO.Path.GetFullPath(path);

    public ConfigReloadTracker Tracker { get; } = tracker;

    public TimeProvider Time { get; } = time;

    /// <summary>How long the file must stay unchanged before it is read, so multi-step saves settle.</summary>
    public TimeSpan Debounce { get; init; } = TimeSpan.FromMilliseconds(150);

    /// <summary>
    /// How often the file's size and time stamp are compared as well, for file systems where change
    /// notifications do not arrive (bind mounts, network shares, symlink swaps).
    /// </summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// The Linux nice value (0-19) of the thread that reads and applies a changed file, asked at each change: higher
    /// gives it the CPU mostly when the threads serving requests leave it idle.
    /// </summary>
    public Func<int> ReloadNice { get; init; } = static () => LowPriorityThread.DefaultNice;

    public IConfigurationProvider Build(IConfigurationBuilder builder) => new ValidatedJsonConfigurationProvider(this);
}
