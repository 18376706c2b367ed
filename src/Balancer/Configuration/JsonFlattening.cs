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
    public static Dictionary<string, string?> Flatten(ReadOnlyMemory<byte> json)
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

        var data = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        VisitObject(root, null, data);
        return data;
    }

    private static void VisitObject(JsonElement element, string? path, Dictionary<string, string?> data)
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
            data[path] = null;
        }
    }

    private static void Visit(JsonElement value, string path, Dictionary<string, string?> data)
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
                    data[path] = string.Empty;
                }

                break;
            default:
                if (!data.TryAdd(path, value.ValueKind == JsonValueKind.Null ? null : value.ToString()))
                {
                    throw new FormatException($"A duplicate key '{path}' was found.");
                }

                break;
        }
    }
}
