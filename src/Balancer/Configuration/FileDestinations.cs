using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Primitives;
using Yarp.ReverseProxy.Configuration;

namespace Balancer.Configuration;

/// <summary>
/// YARP's own reader of the <c>ReverseProxy</c> section, except for the clusters' destinations when they come from the config
/// file alone: those are read here, and a destination written as before is the <see cref="DestinationConfig"/> already in
/// force, not an equal new one.
/// </summary>
/// <remarks>
/// YARP's reader makes a new <see cref="DestinationConfig"/> and metadata dictionary for every destination on every reload,
/// changed or not, and keeps them in its snapshot until the next: at 10,000 destinations about 3.5 MB of new objects that
/// the collections after a reload copy into gen2 while requests wait. Here an unchanged destination costs nothing, and a
/// changed one a <see cref="DestinationConfig"/> whose metadata of one entry (a weight) is shared with every destination that
/// has the same (a thousand weights at most, not 10,000 dictionaries). What YARP reads is the same: its reader sees no
/// destinations (<see cref="ProxyConfigurationView"/> hides them from it) and each cluster gets the ones read here.
/// </remarks>
internal sealed class FileDestinations(IProxyConfigProvider yarp, ProxyConfigurationView view) : IProxyConfigProvider
{
    private IProxyConfig? _read;
    private IProxyConfig? _config;
    private Dictionary<string, IReadOnlyDictionary<string, DestinationConfig>> _inForce = new(StringComparer.OrdinalIgnoreCase);
    private Dictionary<(string Key, string? Value), IReadOnlyDictionary<string, string>> _metadata = [];

    public IProxyConfig GetConfig()
    {
        var read = yarp.GetConfig();
        if (ReferenceEquals(read, _read))
        {
            return _config!;
        }

        // YARP reads on the reload's thread and ends by signalling its change, which makes YARP's manager ask for the
        // config at once on the same thread: the file has not changed in between.
        var file = view.FileWithoutDestinations ? view.File : null;
        if (file is null)
        {
            _inForce = new(StringComparer.OrdinalIgnoreCase);
            _metadata = [];
            (_read, _config) = (read, read);
            return read;
        }

        var inForce = new Dictionary<string, IReadOnlyDictionary<string, DestinationConfig>>(StringComparer.OrdinalIgnoreCase);
        var metadata = new Dictionary<(string Key, string? Value), IReadOnlyDictionary<string, string>>(_metadata.Count);
        var clusters = new List<ClusterConfig>(read.Clusters.Count);
        foreach (var cluster in read.Clusters)
        {
            var destinations = Read(file, cluster.ClusterId, _inForce.GetValueOrDefault(cluster.ClusterId), metadata);
            inForce[cluster.ClusterId] = destinations;
            clusters.Add(cluster with { Destinations = destinations });
        }

        _inForce = inForce;
        _metadata = metadata;
        var config = new Config(read.Routes, clusters, read.ChangeToken);
        (_read, _config) = (read, config);
        return config;
    }

    /// <summary>A cluster's destinations as YARP's reader makes them, reusing those in force and shared metadata.</summary>
    private Dictionary<string, DestinationConfig> Read(
        IConfiguration file,
        string clusterId,
        IReadOnlyDictionary<string, DestinationConfig>? inForce,
        Dictionary<(string Key, string? Value), IReadOnlyDictionary<string, string>> metadata)
    {
        var sections = file.GetSection($"{ProxyConfigurationView.SectionName}:Clusters:{clusterId}:{nameof(ClusterConfig.Destinations)}").GetChildren();
        var destinations = new Dictionary<string, DestinationConfig>(inForce?.Count ?? 0, StringComparer.OrdinalIgnoreCase);
        foreach (var section in sections)
        {
            var address = section[nameof(DestinationConfig.Address)]!;
            var health = section[nameof(DestinationConfig.Health)];
            var host = section[nameof(DestinationConfig.Host)];
            var entries = section.GetSection(nameof(DestinationConfig.Metadata)).GetChildren();
            var count = entries is IConfigurationSection[] array ? array.Length : entries.Count();
            var shared = count == 1 ? Metadata(entries, metadata) : null;
            if (inForce is not null && inForce.TryGetValue(section.Key, out var before)
                && (count == 0 ? before.Metadata is null : shared is not null && ReferenceEquals(before.Metadata, shared))
                && string.Equals(before.Address, address, StringComparison.Ordinal)
                && string.Equals(before.Health, health, StringComparison.Ordinal)
                && string.Equals(before.Host, host, StringComparison.Ordinal))
            {
                destinations.Add(section.Key, before);
                continue;
            }

            destinations.Add(section.Key, new DestinationConfig
            {
                Address = address,
                Health = health,
                Metadata = count == 0 ? null : shared ?? Dictionary(entries),
                Host = host,
            });
        }

        return destinations;
    }

    /// <summary>The one metadata dictionary of this single entry, spelled so: the one in force or one made now.</summary>
    private IReadOnlyDictionary<string, string> Metadata(
        IEnumerable<IConfigurationSection> entries,
        Dictionary<(string Key, string? Value), IReadOnlyDictionary<string, string>> metadata)
    {
        var entry = entries.First();
        var key = (entry.Key, entry.Value);
        if (!metadata.TryGetValue(key, out var shared))
        {
            shared = _metadata.GetValueOrDefault(key) ?? Dictionary(entries)!;
            metadata[key] = shared;
        }

        return shared;
    }

    /// <summary>Metadata as YARP's reader makes it: null without entries.</summary>
    private static IReadOnlyDictionary<string, string>? Dictionary(IEnumerable<IConfigurationSection> entries)
    {
        var dictionary = entries.ToDictionary(e => e.Key, e => e.Value!, StringComparer.OrdinalIgnoreCase);
        return dictionary.Count == 0 ? null : dictionary.AsReadOnly();
    }

    private sealed class Config(IReadOnlyList<RouteConfig> routes, IReadOnlyList<ClusterConfig> clusters, IChangeToken changeToken) : IProxyConfig
    {
        public IReadOnlyList<RouteConfig> Routes => routes;

        public IReadOnlyList<ClusterConfig> Clusters => clusters;

        public IChangeToken ChangeToken => changeToken;
    }
}
