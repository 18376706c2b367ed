using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Configuration;

namespace Balancer.Configuration;

/// <summary>
/// Flattens a JSON config file into configuration keys (<c>a:b:0</c>) with the same keys and values as .NET's JSON
/// configuration provider, parsed straight from the file's bytes.
/// </summary>
/// <remarks>
/// .NET's provider first decodes the whole file into one string and parses that: for a file of thousands of
/// destinations a string of several MB and its buffers on every reload, kept until parsing ends.
/// </remarks>
internal static class JsonFlattening
{
    /// <summary>The parser options of .NET's JSON configuration provider, so both accept the same files.</summary>
    private static readonly JsonDocumentOptions Options = new() { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true };

    /// <summary>The file's keys and values. Throws <see cref="JsonException"/> for bad JSON, <see cref="FormatException"/> for JSON no configuration can hold.</summary>
    /// <param name="json">The file's bytes.</param>
    /// <param name="previous">
    /// The keys and values of the file this one replaces, if any: a key or value spelled exactly as there is taken from
    /// it instead of kept as a new string. A reload of thousands of destinations is mostly the same keys and values as
    /// the config before it, which has long been in the oldest generation; new copies of them would all outlive the
    /// collections that the reload itself sets off, and each of those collections copies what survives it, while
    /// requests wait (at 10,000 destinations about 5 MB of keys and values).
    /// </param>
    public static Dictionary<string, string?> Flatten(ReadOnlyMemory<byte> json, IDictionary<string, string?>? previous = null)
    {
        if (json.Span.StartsWith("\uFEFF"u8))
        {
            json = json[3..];
        }

        using var document = JsonDocument.Parse(json, Options);
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new FormatException($"the top-level JSON element must be an object, not {root.ValueKind}");
        }

        var data = new Dictionary<string, string?>(previous?.Count ?? 0, StringComparer.OrdinalIgnoreCase);
        VisitObject(root, null, new Target(data, previous as Dictionary<string, string?>));
        return data;
    }

    /// <summary>The keys being collected, and those of the previous file to take unchanged strings from.</summary>
    private readonly struct Target
    {
        private readonly Dictionary<string, string?> _data;
        private readonly Dictionary<string, string?>.AlternateLookup<ReadOnlySpan<char>> _previous;
        private readonly bool _hasPrevious;
        private readonly HashSet<string> _values;

        public Target(Dictionary<string, string?> data, Dictionary<string, string?>? previous)
        {
            _data = data;
            _hasPrevious = previous is not null && previous.TryGetAlternateLookup(out _previous);
            _values = new HashSet<string>(StringComparer.Ordinal);
        }

        public void Add(string path, string? value)
        {
            var kept = false;
            // Only the same spelling: keys compare ignoring case, but a section's name keeps its file's case.
            if (_hasPrevious && _previous.TryGetValue(path, out var oldKey, out var oldValue) && string.Equals(oldKey, path, StringComparison.Ordinal))
            {
                path = oldKey;
                if (string.Equals(oldValue, value, StringComparison.Ordinal))
                {
                    value = oldValue;
                    kept = true;
                }
                else
                {
                    // The value it had may well be another key's new one (weights drawn again): offered to the keys after it.
                    Share(oldValue);
                }
            }

            if (!kept && value is { Length: <= SharedValueLength })
            {
                if (_values.TryGetValue(value, out var shared))
                {
                    value = shared;
                }
                else
                {
                    _values.Add(value);
                }
            }

            if (!_data.TryAdd(path, value))
            {
                throw new FormatException($"A duplicate key '{path}' was found.");
            }
        }

        public void Set(string path, string? value) => _data[path] = value;

        private void Share(string? value)
        {
            if (value is { Length: <= SharedValueLength })
            {
                _values.Add(value);
            }
        }
    }

    /// <summary>
    /// Values up to this length are kept once per file: short values repeat across keys (weights, flags, policy names),
    /// and one string each instead of one per key is fewer objects for the reload's collections to copy (10,000 weights
    /// drawn again are 10,000 new strings otherwise, though they take at most 1,000 distinct values).
    /// </summary>
    private const int SharedValueLength = 16;

    private static void VisitObject(JsonElement element, string? path, Target data)
    {
        var empty = true;
        foreach (var property in element.EnumerateObject())
        {
            empty = false;
            Visit(property.Value, path is null ? property.Name : path + ConfigurationPath.KeyDelimiter + property.Name, data);
        }

        // An empty object still makes its section exist, as in .NET's provider.
        if (empty && path is not null)
        {
            data.Set(path, null);
        }
    }

    private static void Visit(JsonElement value, string path, Target data)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Object:
                VisitObject(value, path, data);
                break;
            case JsonValueKind.Array:
                var index = 0;
                foreach (var item in value.EnumerateArray())
                {
                    Visit(item, path + ConfigurationPath.KeyDelimiter + index.ToString(CultureInfo.InvariantCulture), data);
                    index++;
                }

                // An empty array is an empty value, as in .NET's provider.
                if (index == 0)
                {
                    data.Set(path, string.Empty);
                }

                break;
            default:
                data.Add(path, value.ValueKind == JsonValueKind.Null ? null : value.ToString());
                break;
        }
    }
}
