using System.Text.Json;
using System.Text.Json.Serialization;

namespace Balancer.Runtime;

/// <summary>
/// <c>Balancer:StateFile</c>: the runtime overrides as JSON, rewritten whole on every change. Written to a
/// temporary file beside it and renamed over it, so a crash mid-write leaves the previous file, never half
/// of one. A file that is missing or unreadable at start-up is logged and ignored: the balancer starts with
/// the config file's weights and every destination in service.
/// </summary>
internal sealed partial class StateFile(string path, TimeProvider time, ILogger<StateFile> logger)
{
    private const int FormatVersion = 1;

    public string Path { get; } = System.IO.Path.GetFullPath(path);

    public IReadOnlyList<RuntimeOverrides.Entry> Load()
    {
        if (!File.Exists(Path))
        {
            LogMissing(logger, Path);
            return [];
        }

        try
        {
            var document = JsonSerializer.Deserialize(File.ReadAllBytes(Path), StateJson.Default.Document)
                ?? throw new JsonException("the file holds null");
            if (document.Version != FormatVersion)
            {
                throw new JsonException($"format version {document.Version}, expected {FormatVersion}");
            }

            List<RuntimeOverrides.Entry> entries = [];
            foreach (var saved in document.Destinations ?? [])
            {
                if (string.IsNullOrEmpty(saved.Cluster) || string.IsNullOrEmpty(saved.Destination)
                    || !Enum.IsDefined(saved.Mode) || saved.Weight is < 1 or > LoadBalancing.DestinationWeight.Max)
                {
                    throw new JsonException($"invalid entry for '{saved.Cluster}/{saved.Destination}'");
                }

                entries.Add(new RuntimeOverrides.Entry(saved.Cluster, saved.Destination,
                    new DestinationOverride(saved.Mode, saved.Weight, saved.Changed ?? time.GetUtcNow(), saved.ChangedBy ?? "state file")));
            }

            LogLoaded(logger, entries.Count, Path);
            return entries;
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException or NotSupportedException)
        {
            LogCorrupt(logger, Path, e.Message);
            return [];
        }
    }

    public void Save(IReadOnlyList<RuntimeOverrides.Entry> entries)
    {
        var document = new Document(FormatVersion, [.. entries
            .OrderBy(e => e.Cluster, StringComparer.Ordinal).ThenBy(e => e.Destination, StringComparer.Ordinal)
            .Select(e => new SavedDestination(e.Cluster, e.Destination, e.Override.Mode, e.Override.Weight, e.Override.Changed, e.Override.ChangedBy))]);
        var temporary = Path + ".tmp";
        try
        {
            using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                JsonSerializer.Serialize(stream, document, StateJson.Default.Document);
                // On disk before the rename, so that the rename never publishes an empty file after a power cut.
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, Path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The change stays in force in this process; only its survival across a restart is lost.
            LogSaveFailed(logger, Path, e.Message);
        }
    }

    private sealed record Document(int Version, List<SavedDestination>? Destinations);

    private sealed record SavedDestination(string Cluster, string Destination, AdminMode Mode, int? Weight, DateTimeOffset? Changed, string? ChangedBy);

    [JsonSourceGenerationOptions(JsonSerializerDefaults.Web, WriteIndented = true, UseStringEnumConverter = true)]
    [JsonSerializable(typeof(Document))]
    private sealed partial class StateJson : JsonSerializerContext;

    [LoggerMessage(EventId = 7101, Level = LogLevel.Information, Message = "State file {Path} does not exist yet; starting without runtime overrides")]
    private static partial void LogMissing(ILogger logger, string path);

    [LoggerMessage(EventId = 7102, Level = LogLevel.Information, Message = "Loaded {Count} runtime override(s) from state file {Path}")]
    private static partial void LogLoaded(ILogger logger, int count, string path);

    [LoggerMessage(EventId = 7103, Level = LogLevel.Warning, Message = "State file {Path} is unreadable and is ignored ({Reason}); starting without runtime overrides")]
    private static partial void LogCorrupt(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 7104, Level = LogLevel.Error, Message = "Cannot write state file {Path}: {Reason}; the change applies but will not survive a restart")]
    private static partial void LogSaveFailed(ILogger logger, string path, string reason);
}
