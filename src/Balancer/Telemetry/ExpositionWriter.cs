using System.Buffers;
using System.Globalization;
using System.Text;

namespace Balancer.Telemetry;

/// <summary>
/// Writes series in the Prometheus text format, or in OpenMetrics (counter family names without <c>_total</c>,
/// values as floats), the way prometheus-net writes its own, for the per-destination families the balancer keeps
/// itself (<see cref="ProxyMetrics"/>, <see cref="DestinationEventCounts"/>).
/// </summary>
/// <remarks>
/// A sample is a few copies of bytes prepared once (the name, a destination's labels) and one number formatted in
/// place, with no call per token and no lock: prometheus-net's serializer costs several asynchronous calls and a
/// semaphore per token, which at thousands of destinations was most of a scrape's CPU. Bytes go out in chunks of
/// <see cref="ChunkSize"/> from one pooled buffer, not in a buffer of the whole (megabytes at thousands of
/// destinations, on the large object heap at every scrape); a caller makes room with <see cref="EnsureAsync"/>
/// before writing what it said it needs, so the writes themselves are synchronous.
/// </remarks>
internal sealed class ExpositionWriter(Stream output, bool openMetrics) : IDisposable
{
    public const int ChunkSize = 64 * 1024;

    /// <summary>The most one sample needs beyond its name, labels and label suffix: the value and the line's end.</summary>
    public const int ValueBytes = 32;

    private byte[]? _chunk = ArrayPool<byte>.Shared.Rent(ChunkSize);
    private int _used;

    public bool OpenMetrics => openMetrics;

    /// <summary>Passes the bytes written so far on when fewer than <paramref name="needed"/> are left in the chunk.</summary>
    public ValueTask EnsureAsync(int needed, CancellationToken cancel)
    {
        var chunk = Chunk;
        if (chunk.Length - _used >= needed)
        {
            return ValueTask.CompletedTask;
        }

        if (needed > chunk.Length)
        {
            throw new InvalidOperationException($"{needed} bytes of series do not fit a buffer of {chunk.Length}.");
        }

        return FlushAsync(cancel);
    }

    /// <summary>Passes on everything written so far.</summary>
    public async ValueTask FlushAsync(CancellationToken cancel)
    {
        if (_used > 0)
        {
            await output.WriteAsync(Chunk.AsMemory(0, _used), cancel);
            _used = 0;
        }
    }

    /// <summary>The <c># HELP</c> and <c># TYPE</c> lines of a family; <paramref name="name"/> of a counter ends with <c>_total</c>.</summary>
    public async ValueTask FamilyAsync(string name, string help, string type, CancellationToken cancel)
    {
        if (openMetrics && type == "counter" && name.EndsWith("_total", StringComparison.Ordinal))
        {
            name = name[..^"_total".Length];
        }

        var text = $"# HELP {name} {help.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal)}\n# TYPE {name} {type}\n";
        await EnsureAsync(Encoding.UTF8.GetByteCount(text), cancel);
        _used += Encoding.UTF8.GetBytes(text, Chunk.AsSpan(_used));
    }

    /// <summary>
    /// One line: <paramref name="name"/> (the sample's name and <c>{</c>), <paramref name="labels"/>, <paramref name="end"/>
    /// (more labels and <c>} </c>), the value. Room for it must have been made with <see cref="EnsureAsync"/>.
    /// </summary>
    public void Sample(ReadOnlySpan<byte> name, ReadOnlySpan<byte> labels, ReadOnlySpan<byte> end, long value)
    {
        var span = Chunk.AsSpan(_used);
        name.CopyTo(span);
        var at = name.Length;
        labels.CopyTo(span[at..]);
        at += labels.Length;
        end.CopyTo(span[at..]);
        at += end.Length;
        value.TryFormat(span[at..], out var written, default, CultureInfo.InvariantCulture);
        at += written;
        var lineEnd = openMetrics ? ".0\n"u8 : "\n"u8;
        lineEnd.CopyTo(span[at..]);
        _used += at + lineEnd.Length;
    }

    /// <summary>The bytes one <see cref="Sample"/> takes at most.</summary>
    public static int SampleBytes(int name, int labels, int end) => name + labels + end + ValueBytes;

    /// <summary>The label text <c>cluster="…",destination="…"</c> of a destination, escaped as the format wants.</summary>
    public static byte[] DestinationLabels(string cluster, string destination) =>
        Encoding.UTF8.GetBytes($"cluster=\"{EscapeLabel(cluster)}\",destination=\"{EscapeLabel(destination)}\"");

    public static string EscapeLabel(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    public void Dispose()
    {
        if (_chunk is { } chunk)
        {
            _chunk = null;
            ArrayPool<byte>.Shared.Return(chunk);
        }
    }

    private byte[] Chunk => _chunk ?? throw new ObjectDisposedException(nameof(ExpositionWriter));
}
