using System.Text.Json;

namespace Balancer.Configuration;

/// <summary>
/// Finds object members of a JSON config file that repeat a name, compared ignoring case.
/// </summary>
/// <remarks>
/// JSON allows repeated names, and .NET's configuration parser flattens the file into case-insensitive
/// keys: two destinations <c>"A"</c> and <c>"a"</c>, or <c>"A"</c> written twice, become one, their fields
/// merged, and an error is raised only when a leaf value collides (naming that leaf, as "not valid JSON").
/// YARP compares route, cluster and destination ids ignoring case too. So a repeated id is reported here,
/// by its own path and the line it first appeared on, whatever its contents.
/// </remarks>
internal static class DuplicateKeys
{
    /// <summary>Reader options matching the configuration parser's, so both accept the same files.</summary>
    private static readonly JsonReaderOptions Options = new() { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true };

    /// <summary>One error per repeated name; empty when there are none or the file does not parse (the parser reports that).</summary>
    public static List<string> Find(ReadOnlySpan<byte> json)
    {
        var errors = new List<string>();
        if (json.StartsWith("\uFEFF"u8))
        {
            json = json[3..];
        }

        var reader = new Utf8JsonReader(json, Options);
        // One frame per open object or array: its config path, the names seen (objects) or the next index (arrays).
        var frames = new Stack<Frame>();
        string? pendingName = null;
        var lines = new LineCounter();
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject:
                    case JsonTokenType.StartArray:
                        var path = frames.Count == 0 ? string.Empty : Child(frames.Peek(), pendingName);
                        frames.Push(new Frame(path, reader.TokenType == JsonTokenType.StartArray));
                        pendingName = null;
                        break;
                    case JsonTokenType.EndObject:
                    case JsonTokenType.EndArray:
                        frames.Pop();
                        break;
                    case JsonTokenType.PropertyName:
                        var frame = frames.Peek();
                        var name = reader.GetString()!;
                        var line = lines.LineOf(json, reader.TokenStartIndex);
                        if (frame.Names!.TryGetValue(name, out var first))
                        {
                            var key = frame.Path.Length == 0 ? name : frame.Path + ":" + name;
                            var same = string.Equals(first.Name, name, StringComparison.Ordinal) ? "again" : $"differing from '{first.Name}' only in case";
                            errors.Add($"{key}: duplicate key: defined at line {first.Line} and {same} at line {line} (keys and ids are compared ignoring case)");
                        }
                        else
                        {
                            frame.Names[name] = (name, line);
                        }

                        pendingName = name;
                        break;
                    default:
                        // A value: in an array it takes the next index.
                        if (frames.Count > 0 && frames.Peek().IsArray)
                        {
                            frames.Peek().Index++;
                        }

                        pendingName = null;
                        break;
                }
            }
        }
        catch (JsonException)
        {
            // Not valid JSON: the configuration parser says where.
            return [];
        }

        return errors;
    }

    private static string Child(Frame parent, string? name)
    {
        var segment = parent.IsArray ? (parent.Index++).ToString(System.Globalization.CultureInfo.InvariantCulture) : name!;
        return parent.Path.Length == 0 ? segment : parent.Path + ":" + segment;
    }

    /// <summary>
    /// Line numbers of increasing offsets, counting only the bytes since the previous one: counting from the start
    /// for every name would be quadratic, seconds for a file of thousands of destinations.
    /// </summary>
    private struct LineCounter
    {
        private int _offset;
        private int _line;

        public int LineOf(ReadOnlySpan<byte> json, long offset)
        {
            _line += json[_offset..(int)offset].Count((byte)'\n');
            _offset = (int)offset;
            return _line + 1;
        }
    }

    private sealed class Frame(string path, bool isArray)
    {
        public string Path { get; } = path;

        public bool IsArray { get; } = isArray;

        public int Index { get; set; }

        public Dictionary<string, (string Name, int Line)>? Names { get; } = isArray ? null : new(StringComparer.OrdinalIgnoreCase);
    }
}
