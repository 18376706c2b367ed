using Microsoft.Extensions.Configuration;
using Balancer.Hosting;
using Microsoft.Extensions.Primitives;
using Yarp.ReverseProxy.Configuration;

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
/// <param name="configuration">The whole configuration.</param>
/// <param name="withoutFileDestinations">
/// Whether the clusters' destinations are read elsewhere (<see cref="FileDestinations"/>) when the file alone is read: YARP's
/// reader then sees none.
/// </param>
internal sealed class ProxyConfigurationView(IConfigurationRoot configuration, bool withoutFileDestinations = false) : IConfiguration
{
    public const string SectionName = "ReverseProxy";

    private const string ClustersPrefix = SectionName + ":Clusters:";

    private (ValidatedJsonConfigurationProvider Provider, IndexedRoot Root, IndexedRoot Read)? _fileOnly;

    /// <summary>Whether the last read was of the file alone, without the clusters' destinations.</summary>
    internal bool FileWithoutDestinations { get; private set; }

    /// <summary>The file's keys as a configuration, all of them, once the file has been read alone.</summary>
    internal IConfiguration? File => _fileOnly?.Root;

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
                FileWithoutDestinations = false;
                return configuration.GetSection(SectionName);
            }
        }

        if (file is null)
        {
            FileWithoutDestinations = false;
            return configuration.GetSection(SectionName);
        }

        // The configuration builds its providers anew when its sources change; a root over an older one would read a stale file.
        if (_fileOnly is not { } fileOnly || !ReferenceEquals(fileOnly.Provider, file))
        {
            var root = new IndexedRoot(file, file);
            fileOnly = (file, root, withoutFileDestinations ? new IndexedRoot(file, file, ClusterDestinations) : root);
            _fileOnly = fileOnly;
        }

        FileWithoutDestinations = withoutFileDestinations;
        return fileOnly.Read.GetSection(SectionName);
    }

    /// <summary>
    /// YARP's configuration provider over this view of <paramref name="configuration"/>, with the destinations of the config
    /// file read by <see cref="FileDestinations"/>.
    /// </summary>
    public static IReverseProxyBuilder LoadFromConfigFile(IReverseProxyBuilder proxy, IConfigurationRoot configuration)
    {
        var view = new ProxyConfigurationView(configuration, withoutFileDestinations: true);
        var before = proxy.Services.Count;
        proxy.LoadFromConfig(view);
        for (var i = before; i < proxy.Services.Count; i++)
        {
            var yarp = proxy.Services[i];
            if (yarp.ServiceType == typeof(IProxyConfigProvider) && !yarp.IsKeyedService)
            {
                proxy.Services[i] = ServiceDescriptor.Singleton<IProxyConfigProvider>(
                    services => new FileDestinations(ServiceDecoration.Create<IProxyConfigProvider>(services, yarp), view));
            }
        }

        return proxy;
    }

    /// <summary>Whether <paramref name="path"/> is <c>ReverseProxy:Clusters:{id}:Destinations</c>.</summary>
    private static bool ClusterDestinations(ReadOnlySpan<char> path)
    {
        if (!path.StartsWith(ClustersPrefix, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var rest = path[ClustersPrefix.Length..];
        var colon = rest.IndexOf(ConfigurationPath.KeyDelimiter[0]);
        return colon > 0 && rest[(colon + 1)..].Equals(nameof(ClusterConfig.Destinations), StringComparison.OrdinalIgnoreCase);
    }
}
