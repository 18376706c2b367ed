namespace Balancer.Telemetry;

/// <summary>
/// A write-only stream that passes everything on to another but the last <see cref="Held"/> bytes written, which it
/// keeps back until the writer is done: there the caller decides whether they go on (the OpenMetrics terminator that
/// prometheus-net ends with must follow the series written after its own).
/// </summary>
internal sealed class HoldBackStream(Stream inner, int keep) : Stream
{
    private readonly byte[] _held = new byte[keep];
    private readonly byte[] _scratch = new byte[2 * keep];
    private int _count;

    /// <summary>The last bytes written (fewer when fewer were written), not yet passed on.</summary>
    public ReadOnlySpan<byte> Held => _held.AsSpan(0, _count);

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.Length >= keep)
        {
            if (_count > 0)
            {
                await inner.WriteAsync(_held.AsMemory(0, _count), cancellationToken);
            }

            await inner.WriteAsync(buffer[..^keep], cancellationToken);
            buffer[^keep..].CopyTo(_held);
            _count = keep;
            return;
        }

        // A short write: what was held and what came, less the last bytes, goes on.
        _held.AsSpan(0, _count).CopyTo(_scratch);
        buffer.Span.CopyTo(_scratch.AsSpan(_count));
        var total = _count + buffer.Length;
        var passed = Math.Max(0, total - keep);
        if (passed > 0)
        {
            await inner.WriteAsync(_scratch.AsMemory(0, passed), cancellationToken);
        }

        _count = total - passed;
        _scratch.AsSpan(passed, _count).CopyTo(_held);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override void Flush()
    {
    }

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("Asynchronous writes only: the response body allows no synchronous I/O.");

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
