namespace Balancer.Resilience;

/// <summary>
/// A request body of unknown length that keeps what it passes on, up to a limit, so that an attempt that
/// failed can be sent again from the first byte. It tees rather than reading the whole body before
/// forwarding: a streaming gRPC call's body need not end before its response begins, and a unary call's
/// body has no <c>Content-Length</c> to decide on. Past the limit it keeps nothing more and cannot replay.
/// </summary>
internal sealed class ReplayableBody(Stream inner, long limit) : Stream
{
    private byte[] _kept = [];
    private int _length;
    private int _position;
    private bool _overflowed;
    private int _attempt;
    private Task<int>? _innerRead;

    /// <summary>True while everything read so far is kept.</summary>
    public bool CanReplay => !_overflowed;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    /// <summary>The next read starts again at the first byte: what was kept, then the rest of the body.</summary>
    public void Rewind()
    {
        if (_overflowed)
        {
            throw new InvalidOperationException("The body outgrew the replay limit.");
        }

        _attempt++;
        _position = 0;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        // YARP does not wait for a failed attempt's body copy to end before the next attempt starts, so the old
        // copy may still be reading the client's body, which allows one read at a time: wait for it; what it
        // got is kept for this attempt.
        if (_innerRead is { IsCompleted: false } previous)
        {
            await ((Task)previous).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        if (_position < _length)
        {
            return FromKept(buffer.Span);
        }

        var read = ReadInnerAsync(buffer, _attempt, cancellationToken);
        _innerRead = read;
        return await read;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (_position < _length)
        {
            return FromKept(buffer);
        }

        var read = inner.Read(buffer);
        Keep(buffer[..read], advance: true);
        return read;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    private int FromKept(Span<byte> buffer)
    {
        var count = Math.Min(buffer.Length, _length - _position);
        _kept.AsSpan(_position, count).CopyTo(buffer);
        _position += count;
        return count;
    }

    private async Task<int> ReadInnerAsync(Memory<byte> buffer, int attempt, CancellationToken cancellationToken)
    {
        var read = await inner.ReadAsync(buffer, cancellationToken);
        Keep(buffer.Span[..read], advance: attempt == _attempt);
        return read;
    }

    /// <summary>Keeps what was read; <paramref name="advance"/> is false for a read of an attempt given up, whose bytes the current attempt has yet to get.</summary>
    private void Keep(ReadOnlySpan<byte> read, bool advance)
    {
        if (_overflowed || read.IsEmpty)
        {
            return;
        }

        if (_length + (long)read.Length > limit)
        {
            _overflowed = true;
            _kept = [];
            _length = _position = 0;
            return;
        }

        if (_length + read.Length > _kept.Length)
        {
            Array.Resize(ref _kept, (int)Math.Min(limit, Math.Max(_length + read.Length, Math.Max(256, _kept.Length * 2L))));
        }

        read.CopyTo(_kept.AsSpan(_length));
        _length += read.Length;
        if (advance)
        {
            _position = _length;
        }
    }
}
