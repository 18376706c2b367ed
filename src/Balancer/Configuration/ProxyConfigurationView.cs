using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Primitives;

namespace Balancer.Configuration;

/// <summary>
/// The <c>ReverseProxy</c> section as YARP reads it on every reload: from the config file's provider alone when no
/// other configuration source (environment variables, the command line) sets a key below it, otherwise from the
/// whole configuration, so that an override still wins.
/// </summary>
/// <remarks>
/// YARP reads a cluster section by section: for each of thousands of destinations it lists the children of its
/// metadata, which the whole configuration answers by asking every provider in turn (each environment-variable
/// provider scans all its variables, each copies and sorts what the earlier ones returned). The config file's
/// provider alone answers from its index, through sections that make no string per path (<see cref="IndexedRoot"/>).
/// Both give the same sections whenever the other sources hold nothing under <c>ReverseProxy</c>, which is checked on
/// every read, so a source added later is seen.
/// </remarks>
internal sealed class ProxyConfigurationView(IConfigurationRoot configuration) : IConfiguration
{
    public const string SectionName = "ReverseProxy";

    private (ValidatedJsonConfigurationProvider Provider, IndexedRoot Root)? _fileOnly;

    public string? this[string key]
    {
        get => Current()[key];
        set => throw new NotSupportedException("The proxy configuration is read-only.");
    }

    public IEnumerable<IConfigurationSection> GetChildren() => Current().GetChildren();

    public IChangeToken GetReloadToken() => configuration.GetReloadToken();

    public IConfigurationSection GetSection(string key) => Current().GetSection(key);

    /// <summary>The section to read now: the file's alone, or the whole configuration's when another source overrides a key in it.</summary>
    internal IConfigurationSection Current()
    {
        ValidatedJsonConfigurationProvider? file = null;
        foreach (var provider in configuration.Providers)
        {
            if (provider is ValidatedJsonConfigurationProvider validated)
            {
                file = validated;
            }
            else if (provider.GetChildKeys([], SectionName).Any())
            {
                return configuration.GetSection(SectionName);
            }
        }

        if (file is null)
        {
            return configuration.GetSection(SectionName);
        }

        // The configuration builds its providers anew when its sources change; a root over an older one would read a stale file.
        if (_fileOnly is not { } fileOnly || !ReferenceEquals(fileOnly.Provider, file))
        {
            fileOnly = (file, new IndexedRoot(file, file));
            _fileOnly = fileOnly;
        }

        return fileOnly.Root.GetSection(SectionName);
    }
}
