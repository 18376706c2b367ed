using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Primitives;

namespace Balancer.Configuration;

/// <summary>A config file's flattened keys with their index of sections, looked up by span.</summary>
internal interface IIndexedKeys
{
    /// <summary>The value of the key spelled by <paramref name="key"/> (ignoring case), looked up without making a string of it.</summary>
    bool TryGet(ReadOnlySpan<char> key, out string? value);

    /// <summary>The keys' own string for a section or key spelled exactly as <paramref name="path"/>, if they have one.</summary>
    string? Spelled(ReadOnlySpan<char> path);

    /// <summary>The names of the children of <paramref name="parentPath"/> (the top when null), sorted and distinct, as the index holds them.</summary>
    string[] ChildrenOf(string? parentPath);

    /// <summary>Whether the section <paramref name="path"/> has children, asked without a string for it.</summary>
    bool HasChildren(ReadOnlySpan<char> path);

    IChangeToken GetReloadToken();
}

/// <summary>The lookups <see cref="IIndexedKeys"/> makes over a provider's data and index.</summary>
internal static class IndexedKeys
{
    public static bool TryGet(IDictionary<string, string?> data, ReadOnlySpan<char> key, out string? value) =>
        data is Dictionary<string, string?> dictionary && dictionary.TryGetAlternateLookup<ReadOnlySpan<char>>(out var lookup)
            ? lookup.TryGetValue(key, out value)
            : data.TryGetValue(key.ToString(), out value);

    public static string? Spelled(IDictionary<string, string?> data, ConfigChildKeys index, ReadOnlySpan<char> path)
    {
        if (index.TryGetPath(path, out var section) && path.SequenceEqual(section))
        {
            return section;
        }

        return data is Dictionary<string, string?> dictionary && dictionary.TryGetAlternateLookup<ReadOnlySpan<char>>(out var lookup)
            && lookup.TryGetValue(path, out var key, out _) && path.SequenceEqual(key) ? key : null;
    }
}

/// <summary>
/// A configuration over one provider of indexed keys, which someone else owns: unlike <see cref="ConfigurationRoot"/>, it
/// neither loads the provider again nor disposes it.
/// </summary>
/// <remarks>
/// Its sections answer as <see cref="ConfigurationSection"/> does, but without a new string per value asked for or per
/// section: a reload of 10,000 destinations is read section by section twice (validated, then read by YARP), and the
/// paths those sections built were most of the reload's garbage (23 MB of YARP's read alone); the names of the
/// destinations and of their metadata that YARP keeps are the index's strings, which have long been in the oldest
/// generation, rather than new copies. A section that the keys do not spell makes its path only when asked for it.
/// </remarks>
/// <param name="keys">The keys it reads.</param>
/// <param name="provider">The provider they belong to.</param>
/// <param name="hidden">Sections whose children it does not list, if any.</param>
internal sealed class IndexedRoot(IIndexedKeys keys, IConfigurationProvider provider, IndexedRoot.Hidden? hidden = null) : IConfigurationRoot
{
    /// <summary>Whether the section <paramref name="path"/> is shown without children.</summary>
    public delegate bool Hidden(ReadOnlySpan<char> path);

    public IEnumerable<IConfigurationProvider> Providers => [provider];

    public string? this[string key]
    {
        get => keys.TryGet(key, out var value) ? value : null;
        set => throw new NotSupportedException("The configuration is read-only.");
    }

    public IEnumerable<IConfigurationSection> GetChildren() => Children(null);

    public IChangeToken GetReloadToken() => keys.GetReloadToken();

    public IConfigurationSection GetSection(string key) => Section(null, key);

    public void Reload() => throw new NotSupportedException("The configuration that owns the provider reloads it.");

    /// <summary>The value of <paramref name="parent"/>:<paramref name="key"/> (or of <paramref name="key"/> at the top).</summary>
    internal string? Value(string? parent, string key)
    {
        if (parent is null)
        {
            return this[key];
        }

        Span<char> path = Length(parent, key) <= 256 ? stackalloc char[Length(parent, key)] : new char[Length(parent, key)];
        return keys.TryGet(Combine(path, parent, key), out var value) ? value : null;
    }

    /// <summary>The section <paramref name="parent"/>:<paramref name="key"/>, named by the keys' own string when they spell it so.</summary>
    internal IndexedSection Section(string? parent, string key)
    {
        if (parent is null)
        {
            return new IndexedSection(this, keys.Spelled(key) ?? key, null, key);
        }

        Span<char> buffer = Length(parent, key) <= 256 ? stackalloc char[Length(parent, key)] : new char[Length(parent, key)];
        return new IndexedSection(this, keys.Spelled(Combine(buffer, parent, key)), parent, key);
    }

    /// <summary>The children of <paramref name="parent"/> in the configuration's order, named by the index's own strings.</summary>
    internal IEnumerable<IConfigurationSection> Children(string? parent)
    {
        var names = keys.ChildrenOf(parent);
        if (names.Length == 0 || (parent is not null && hidden?.Invoke(parent) == true))
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

    /// <summary>Whether <paramref name="parent"/>:<paramref name="key"/> has children, asked without a string for its path.</summary>
    internal bool HasChildren(string parent, string key)
    {
        Span<char> buffer = Length(parent, key) <= 256 ? stackalloc char[Length(parent, key)] : new char[Length(parent, key)];
        var path = Combine(buffer, parent, key);
        return keys.HasChildren(path) && hidden?.Invoke(path) != true;
    }

    private static int Length(string parent, string key) => parent.Length + 1 + key.Length;

    private static Span<char> Combine(Span<char> path, string parent, string key)
    {
        parent.CopyTo(path);
        path[parent.Length] = ConfigurationPath.KeyDelimiter[0];
        key.CopyTo(path[(parent.Length + 1)..]);
        return path;
    }
}

/// <summary>A section of an <see cref="IndexedRoot"/>: path, key and value as <see cref="ConfigurationSection"/> gives them.</summary>
internal sealed class IndexedSection : IConfigurationSection
{
    private readonly IndexedRoot _root;
    private readonly string? _parent;
    private readonly string _name;
    private string? _path;

    /// <param name="root">The configuration it reads.</param>
    /// <param name="path">Its path when known as a string, else made from <paramref name="parent"/> and <paramref name="name"/> when asked for.</param>
    /// <param name="parent">The parent's path, null at the top.</param>
    /// <param name="name">The key it was asked by, which may hold more than one segment.</param>
    public IndexedSection(IndexedRoot root, string? path, string? parent, string name)
    {
        _root = root;
        _path = path;
        _parent = parent;
        _name = name;
        var colon = name.LastIndexOf(ConfigurationPath.KeyDelimiter, StringComparison.Ordinal);
        Key = colon < 0 ? name : name[(colon + 1)..];
    }

    public string Key { get; }

    public string Path => _path ??= _parent is null ? _name : _parent + ConfigurationPath.KeyDelimiter + _name;

    public string? Value
    {
        get => _path is not null ? _root[_path] : _root.Value(_parent, _name);
        set => throw new NotSupportedException("The configuration is read-only.");
    }

    public string? this[string key]
    {
        get => _root.Value(Path, key);
        set => throw new NotSupportedException("The configuration is read-only.");
    }

    public IEnumerable<IConfigurationSection> GetChildren() =>
        _path is null && _parent is not null && !_root.HasChildren(_parent, _name) ? [] : _root.Children(Path);

    public IChangeToken GetReloadToken() => _root.GetReloadToken();

    public IConfigurationSection GetSection(string key) => _root.Section(Path, key);
}
