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
        // One frame per open object or array: its parent and name (its config path is built only for an error), the
        // names seen (objects) or the next index (arrays). The names' tables are reused by depth: only one object
        // is open at each depth, and a file of thousands of destinations would otherwise allocate one per object.
        var frames = new Stack<Frame>();
        var tables = new List<Dictionary<string, (string Name, int Line)>>();
        var names = new Names();
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
                        var parent = frames.Count == 0 ? null : frames.Peek();
                        var segment = parent is { IsArray: true } ? (parent.Index++).ToString(System.Globalization.CultureInfo.InvariantCulture) : pendingName;
                        Dictionary<string, (string Name, int Line)>? table = null;
                        if (reader.TokenType == JsonTokenType.StartObject)
                        {
                            while (tables.Count <= frames.Count)
                            {
                                tables.Add(new Dictionary<string, (string Name, int Line)>(StringComparer.OrdinalIgnoreCase));
                            }

                            table = tables[frames.Count];
                            table.Clear();
                        }

                        frames.Push(new Frame(parent, segment, table));
                        pendingName = null;
                        break;
                    case JsonTokenType.EndObject:
                    case JsonTokenType.EndArray:
                        frames.Pop();
                        break;
                    case JsonTokenType.PropertyName:
                        var frame = frames.Peek();
                        var name = names.Of(ref reader);
                        var line = lines.LineOf(json, reader.TokenStartIndex);
                        if (frame.Names!.TryGetValue(name, out var first))
                        {
                            var path = frame.Path;
                            var key = path.Length == 0 ? name : path + ":" + name;
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

    /// <summary>
    /// One string per distinct property name, exact case kept: "Address" or "Weight" is read thousands of times in a
    /// large file, and only ids are new each time.
    /// </summary>
    private sealed class Names
    {
        private readonly HashSet<string> _seen = new(StringComparer.Ordinal);

        public string Of(ref Utf8JsonReader reader)
        {
            Span<char> buffer = stackalloc char[128];
            if (reader.HasValueSequence || reader.ValueSpan.Length > buffer.Length || reader.ValueIsEscaped)
            {
                return reader.GetString()!;
            }

            var length = reader.CopyString(buffer);
            var lookup = _seen.GetAlternateLookup<ReadOnlySpan<char>>();
            if (!lookup.TryGetValue(buffer[..length], out var name))
            {
                name = new string(buffer[..length]);
                _seen.Add(name);
            }

            return name;
        }
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

    /// <summary>An open object (with the names seen in it) or array (with its next index).</summary>
    private sealed class Frame(Frame? parent, string? segment, Dictionary<string, (string Name, int Line)>? names)
    {
        public bool IsArray => Names is null;

        public int Index { get; set; }

        public Dictionary<string, (string Name, int Line)>? Names { get; } = names;

        /// <summary>The config path: "" for the root, "a:b:0" below it.</summary>
        public string Path => parent is null ? string.Empty : parent.Path.Length == 0 ? segment! : parent.Path + ":" + segment;
    }
}
