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
/// provider alone answers from its index. Both give the same sections whenever the other sources hold nothing
/// under <c>ReverseProxy</c>, which is checked on every read, so a source added later is seen.
/// </remarks>
internal sealed class ProxyConfigurationView(IConfigurationRoot configuration) : IConfiguration
{
    public const string SectionName = "ReverseProxy";

    private (ValidatedJsonConfigurationProvider Provider, IConfigurationRoot Root)? _fileOnly;

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
            fileOnly = (file, new FileOnlyRoot(file));
            _fileOnly = fileOnly;
        }

        return fileOnly.Root.GetSection(SectionName);
    }

    /// <summary>
    /// A configuration over the file's provider, which the whole configuration owns: unlike <see cref="ConfigurationRoot"/>, it
    /// neither loads the provider again nor disposes it.
    /// </summary>
    private sealed class FileOnlyRoot(ValidatedJsonConfigurationProvider file) : IConfigurationRoot
    {
        public IEnumerable<IConfigurationProvider> Providers => [file];

        public string? this[string key]
        {
            get => file.TryGet(key, out var value) ? value : null;
            set => throw new NotSupportedException("The proxy configuration is read-only.");
        }

        public IEnumerable<IConfigurationSection> GetChildren() => Children(null);

        public IChangeToken GetReloadToken() => file.GetReloadToken();

        public IConfigurationSection GetSection(string key) => Section(null, key);

        public void Reload() => throw new NotSupportedException("The whole configuration reloads its providers.");

        /// <summary>The value of <paramref name="parent"/>:<paramref name="key"/>, looked up without a string for the path.</summary>
        public string? Value(string parent, string key)
        {
            var length = parent.Length + 1 + key.Length;
            Span<char> path = length <= 256 ? stackalloc char[length] : new char[length];
            Combine(path, parent, key);
            return file.TryGet(path, out var value) ? value : null;
        }

        /// <summary>
        /// The section <paramref name="parent"/>:<paramref name="key"/> as <see cref="ConfigurationSection"/> names it: its path is
        /// the file's own string when the file spells it so, and its key the last segment of the path.
        /// </summary>
        public FileSection Section(string? parent, string key)
        {
            string path;
            if (parent is null)
            {
                path = file.Spelled(key) ?? key;
            }
            else
            {
                var length = parent.Length + 1 + key.Length;
                Span<char> buffer = length <= 256 ? stackalloc char[length] : new char[length];
                Combine(buffer, parent, key);
                path = file.Spelled(buffer) ?? buffer.ToString();
            }

            var colon = key.LastIndexOf(ConfigurationPath.KeyDelimiter, StringComparison.Ordinal);
            return new FileSection(this, path, colon < 0 ? key : key[(colon + 1)..]);
        }

        /// <summary>The children of <paramref name="parent"/> in the file's order, named by the index's own strings.</summary>
        public IEnumerable<IConfigurationSection> Children(string? parent)
        {
            var names = file.ChildrenOf(parent);
            if (names.Length == 0)
            {
                return [];
            }

            var children = new IConfigurationSection[names.Length];
            for (var i = 0; i < names.Length; i++)
            {
                children[i] = Section(parent, names[i]);
            }

            return children;
        }

        private static void Combine(Span<char> path, string parent, string key)
        {
            parent.CopyTo(path);
            path[parent.Length] = ConfigurationPath.KeyDelimiter[0];
            key.CopyTo(path[(parent.Length + 1)..]);
        }
    }

    /// <summary>
    /// A section of the file's keys, read as <see cref="ConfigurationSection"/> reads it, but without a new string per value
    /// asked for or per section: YARP reads a cluster of 10,000 destinations section by section on every reload, and the
    /// paths it built made up most of that read's 23 MB of garbage; the destinations' and their metadata's names it keeps
    /// are the index's strings, which have long been in the oldest generation, rather than new copies.
    /// </summary>
    private sealed class FileSection(FileOnlyRoot root, string path, string key) : IConfigurationSection
    {
        public string Key => key;

        public string Path => path;

        public string? Value
        {
            get => root[path];
            set => throw new NotSupportedException("The proxy configuration is read-only.");
        }

        public string? this[string key]
        {
            get => root.Value(path, key);
            set => throw new NotSupportedException("The proxy configuration is read-only.");
        }

        public IEnumerable<IConfigurationSection> GetChildren() => root.Children(path);

        public IChangeToken GetReloadToken() => root.GetReloadToken();

        public IConfigurationSection GetSection(string key) => root.Section(path, key);
    }
}
