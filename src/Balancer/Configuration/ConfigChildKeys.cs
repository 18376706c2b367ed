using Microsoft.Extensions.Configuration;

namespace Balancer.Configuration;

/// <summary>Each section's immediate children, sorted as configuration keys are.</summary>
/// <remarks>
/// Built on every reload from every key of the file, so it looks sections up by span rather than cutting a
/// string for each ancestor of each key, and keeps one string per distinct name ("Address", "Weight"), not
/// one per key: at 10,000 destinations the index is built several times faster and adds a fraction of the
/// garbage a reload leaves for the GC.
/// </remarks>
internal sealed class ConfigChildKeys
{
    private readonly Dictionary<string, string[]> _children;
    private string[] _root;

    /// <param name="data">The keys to index.</param>
    /// <param name="previous">
    /// The index of the config these keys replace, if any: a section spelled exactly as there keeps that index's string
    /// for its path, and its array of children when they are the same, which have long been in the oldest generation,
    /// rather than new ones that the reload's own collections would copy (two sections per destination, at 10,000
    /// destinations about 3 MB).
    /// </param>
    public ConfigChildKeys(IDictionary<string, string?> data, ConfigChildKeys? previous = null)
    {
        var lists = new Dictionary<string, List<string>>(previous?._children.Count ?? 0, StringComparer.OrdinalIgnoreCase);
        Dictionary<string, string[]>.AlternateLookup<ReadOnlySpan<char>> earlier = default;
        var hasEarlier = previous is not null && previous._children.TryGetAlternateLookup(out earlier);
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
                    var parent = key.AsSpan(0, start - 1);
                    lists[hasEarlier && earlier.TryGetValue(parent, out var kept, out _) && parent.SequenceEqual(kept) ? kept : parent.ToString()] = list;
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

        _root = Sorted(root, previous?._root);
        _children = new Dictionary<string, string[]>(lists.Count, StringComparer.OrdinalIgnoreCase);
        foreach (var (parent, list) in lists)
        {
            _children[parent] = Sorted(list, hasEarlier && earlier.TryGetValue(parent, out var before) ? before : null);
        }
    }

    /// <summary>
    /// Whether <paramref name="other"/> lists the same sections with the same arrays of children: then it can be kept in place of
    /// this one, which is all new objects. A reload that changes only values (weights, a policy) gives the same index.
    /// </summary>
    public bool SameAs(ConfigChildKeys? other)
    {
        if (other is null || !Same(other._root, _root) || other._children.Count != _children.Count)
        {
            return false;
        }

        foreach (var (parent, children) in _children)
        {
            if (!other._children.TryGetValue(parent, out var theirs) || !Same(theirs, children))
            {
                return false;
            }
        }

        return true;

        // Mostly the very arrays; the few the file's defaults were added to are new arrays of the same names.
        static bool Same(string[] a, string[] b) => a == b || a.AsSpan().SequenceEqual(b);
    }

    /// <summary>The index's own string for the section <paramref name="path"/> (compared ignoring case, as keys are), if it has children.</summary>
    public bool TryGetPath(ReadOnlySpan<char> path, out string existing)
    {
        if (_children.TryGetAlternateLookup<ReadOnlySpan<char>>(out var lookup) && lookup.TryGetValue(path, out var found, out _))
        {
            existing = found;
            return true;
        }

        existing = "";
        return false;
    }

    public string[] Of(string? parentPath) => parentPath is null ? _root : _children.TryGetValue(parentPath, out var children) ? children : [];

    /// <summary>Whether the section <paramref name="path"/> has children, looked up without a string for it.</summary>
    public bool HasChildren(ReadOnlySpan<char> path) =>
        _children.TryGetAlternateLookup<ReadOnlySpan<char>>(out var lookup) && lookup.TryGetValue(path, out var children) && children.Length > 0;

    /// <summary>
    /// The children of <paramref name="parentPath"/> as a provider returns them: after <paramref name="earlierKeys"/>, the
    /// ones the providers before it returned, sorted together.
    /// </summary>
    public IEnumerable<string> Of(IEnumerable<string> earlierKeys, string? parentPath)
    {
        var own = Of(parentPath);
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

    /// <summary>
    /// Lists a key added to the data since the index was built, before the index is shared: for the few keys a file is
    /// given by default, a few small arrays instead of a new index of every key.
    /// </summary>
    public void Add(string key)
    {
        var path = key;
        while (true)
        {
            var colon = path.LastIndexOf(ConfigurationPath.KeyDelimiter, StringComparison.Ordinal);
            var parent = colon < 0 ? null : path[..colon];
            var name = colon < 0 ? path : path[(colon + 1)..];
            var children = Of(parent);
            var at = Array.BinarySearch(children, name, ConfigurationKeyComparer.Instance);
            if (at >= 0)
            {
                // Listed already, and so is every ancestor.
                return;
            }

            string[] grown = [.. children.AsSpan(0, ~at), name, .. children.AsSpan(~at)];
            if (parent is null)
            {
                _root = grown;
                return;
            }

            _children[parent] = grown;
            path = parent;
        }
    }

    /// <summary>The distinct names of <paramref name="list"/> in order: <paramref name="before"/> itself when it holds the same (an index's arrays are never changed in place).</summary>
    private static string[] Sorted(List<string> list, string[]? before)
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
        return before is not null && list.SequenceEqual(before, StringComparer.Ordinal) ? before : [.. list];
    }
}
