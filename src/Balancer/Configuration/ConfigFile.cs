using System.Text.Json;
using Microsoft.Extensions.Configuration;

namespace Balancer.Configuration;

/// <summary>Reads and validates a config file in one step, without touching the live configuration.</summary>
public static class ConfigFile
{
    /// <summary>The outcome of reading a file: its flattened keys, or the reasons it cannot be used.</summary>
    public sealed record Result(IDictionary<string, string?>? Data, IReadOnlyList<string> Errors)
    {
        public bool IsValid => Errors.Count == 0;

        /// <summary>The index of <see cref="Data"/>'s sections the file was validated with, for its provider to keep.</summary>
        internal ConfigChildKeys? Children { get; init; }

        /// <summary>The valid file's keys as a configuration, for comparing two files.</summary>
        public IConfiguration ToConfiguration() => new ConfigurationBuilder().AddInMemoryCollection(Data!).Build();
    }

    public static Result Read(string path) => Read(path, null, null);

    /// <summary>
    /// Reads a file that replaces <paramref name="previous"/> (the keys of the config in force, and their index): the new
    /// keys, values and section paths that are spelled as there are taken from them (see <see cref="JsonFlattening.Flatten"/>).
    /// </summary>
    internal static Result Read(string path, IDictionary<string, string?>? previous, ConfigChildKeys? previousChildren)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return Failed($"{path}: cannot read the config file: {e.Message}");
        }

        return Parse(bytes, path, previous, previousChildren);
    }

    /// <summary>Validates the bytes of a config file; <paramref name="name"/> prefixes the errors (a path, or what the bytes came from).</summary>
    public static Result Parse(byte[] bytes, string name) => Parse(bytes, name, null, null);

    private static Result Parse(byte[] bytes, string name, IDictionary<string, string?>? previous, ConfigChildKeys? previousChildren)
    {
        var path = name;
        if (bytes.Length == 0)
        {
            return Failed($"{path}: the config file is empty");
        }

        var duplicates = DuplicateKeys.Find(bytes);
        if (duplicates.Count > 0)
        {
            return new Result(null, duplicates);
        }

        IConfigurationRoot parsed;
        Flattened provider;
        try
        {
            provider = new Flattened(JsonFlattening.Flatten(bytes, previous), previousChildren);
            provider.Load();
            // Validation reads every destination's sections: by span, rather than a path string for each.
            parsed = new IndexedRoot(provider, provider);
        }
        catch (FormatException e)
        {
            // A key the file sets twice through different spellings ("a:b" and "a": {"b"}), or a file that is not an object.
            return Failed($"{path}: not valid JSON: {e.Message}");
        }
        catch (JsonException e)
        {
            // Syntax errors: the message carries the line and position.
            return Failed($"{path}: not valid JSON: {e.Message}");
        }

        var errors = ConfigValidator.Validate(parsed);
        if (errors.Count > 0)
        {
            return new Result(null, errors);
        }

        // The parser's own flat keys: AsEnumerable() would list every section's children by scanning all keys,
        // which is quadratic in the destinations (about 25 s of CPU for a file of 10,000). Kept rather than copied:
        // at thousands of destinations a copy is another table of tens of thousands of entries on every reload.
        var data = provider.Values;
        if (data is not Dictionary<string, string?> { Comparer: var comparer } || !ReferenceEquals(comparer, StringComparer.OrdinalIgnoreCase))
        {
            data = new Dictionary<string, string?>(data, StringComparer.OrdinalIgnoreCase);
        }

        List<string>? empty = null;
        foreach (var (key, value) in data)
        {
            if (value is null)
            {
                (empty ??= []).Add(key);
            }
        }

        var children = provider.Children;
        foreach (var added in ApplyDefaults(parsed, data))
        {
            children.Add(added);
        }

        if (empty is not null)
        {
            // Rare (an empty object in the file): a removed key can empty its ancestors, which the index is built anew for.
            empty.ForEach(key => data.Remove(key));
            children = new ConfigChildKeys(data, previousChildren);
        }

        if (children.SameAs(previousChildren))
        {
            // The index in force already describes these keys: keeping it leaves the new one (a dictionary entry per
            // section, 20,000 at 10,000 destinations) to die young instead of outliving the reload with the config.
            children = previousChildren!;
        }

        return new Result(data, errors) { Children = children };
    }

    /// <summary>
    /// With YARP's default (HealthyOrPanic) a cluster whose destinations are all down sends traffic to all
    /// of them anyway; an operator expects the NGINX behaviour, an immediate 503. A cluster can still ask
    /// for panic mode explicitly. Passive checks are on unless the cluster says otherwise, so a destination
    /// that fails a request leaves rotation at once even in a cluster without active probes.
    /// </summary>
    /// <returns>The keys added.</returns>
    private static List<string> ApplyDefaults(IConfiguration parsed, IDictionary<string, string?> data)
    {
        List<string> added = [];
        foreach (var cluster in parsed.GetSection("ReverseProxy:Clusters").GetChildren())
        {
            foreach (var (key, value) in (ReadOnlySpan<(string, string)>)[
                ("HealthCheck:AvailableDestinationsPolicy", "HealthyAndUnknown"),
                ("HealthCheck:Passive:Enabled", "true"),
                ("HealthCheck:Passive:Policy", Health.FirstFailurePassivePolicy.PolicyName)])
            {
                var path = cluster.Path + ConfigurationPath.KeyDelimiter + key;
                if (data.TryAdd(path, value))
                {
                    added.Add(path);
                }
            }
        }

        return added;
    }

    private static Result Failed(string error) => new(null, [error]);

    /// <summary>The file's flattened keys as a configuration provider, readable as they are.</summary>
    /// <remarks>
    /// Sections are listed from an index: the base class scans every key for each section asked about, and validation
    /// binds the options classes section by section, which at 10,000 destinations was most of its CPU. The same index is
    /// then kept by the file's provider instead of being built again.
    /// </remarks>
    private sealed class Flattened(Dictionary<string, string?> values, ConfigChildKeys? previousChildren) : ConfigurationProvider, IIndexedKeys
    {
        private ConfigChildKeys? _children;

        public IDictionary<string, string?> Values => Data;

        public ConfigChildKeys Children => _children ??= new ConfigChildKeys(Data, previousChildren);

        public override void Load() => Data = values;

        public override IEnumerable<string> GetChildKeys(IEnumerable<string> earlierKeys, string? parentPath) => Children.Of(earlierKeys, parentPath);

        bool IIndexedKeys.TryGet(ReadOnlySpan<char> key, out string? value) => IndexedKeys.TryGet(Data, key, out value);

        string? IIndexedKeys.Spelled(ReadOnlySpan<char> path) => IndexedKeys.Spelled(Data, Children, path);

        string[] IIndexedKeys.ChildrenOf(string? parentPath) => Children.Of(parentPath);

        bool IIndexedKeys.HasChildren(ReadOnlySpan<char> path) => Children.HasChildren(path);
    }
}
