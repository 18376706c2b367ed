namespace Balancer.Resilience;

/// <summary>
/// A request body of unknown length that keeps what it passes on, up to a limit, so that an attempt that
/// failed can be sent again from the first byte. It tees rather than reading the whole body before
/// forwarding: a streaming gRPC call's body need not end before its response begins, and a unary call's
/// body has no <c>Content-Length</c> to decide on. Past the limit it keeps nothing more and cannot replay.
/// Each attempt reads through its own <see cref="Attempt"/>: YARP does not wait for a failed attempt's body
/// copy to end before the next attempt starts, so a given-up copy may still be reading.
/// </summary>
internal sealed class ReplayableBody(Stream inner, long limit)
{
    // The client's stream allows one read at a time, and a given-up copy can race the current attempt to it.
    private readonly SemaphoreSlim _reading = new(1, 1);
    private byte[] _kept = [];
    private int _length;
    private bool _overflowed;
    private Attempt? _current;

    /// <summary>True while everything read so far is kept.</summary>
    public bool CanReplay => !_overflowed;

    /// <summary>The body for the first attempt.</summary>
    public Stream First() => _current = new Attempt(this);

    /// <summary>
    /// The body for the next attempt: what was kept, then the rest of the client's body. The previous
    /// attempt's body stops at its next read; a read of it already waiting for the client keeps what it gets.
    /// </summary>
    public Stream Next()
    {
        if (_overflowed)
        {
            throw new InvalidOperationException("The body outgrew the replay limit.");
        }

        var next = new Attempt(this);
        Volatile.Write(ref _current, next);
        return next;
    }

    private async ValueTask<int> ReadAsync(Attempt attempt, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        await _reading.WaitAsync(cancellationToken);
        try
        {
            if (TryFromKept(attempt, buffer.Span, out var kept))
            {
                return kept;
            }

            var read = await inner.ReadAsync(buffer, cancellationToken);
            Keep(attempt, buffer.Span[..read]);
            return read;
        }
        finally
        {
            _reading.Release();
        }
    }

    private int Read(Attempt attempt, Span<byte> buffer)
    {
        _reading.Wait();
        try
        {
            if (TryFromKept(attempt, buffer, out var kept))
            {
                return kept;
            }

            var read = inner.Read(buffer);
            Keep(attempt, buffer[..read]);
            return read;
        }
        finally
        {
            _reading.Release();
        }
    }

    private bool TryFromKept(Attempt attempt, Span<byte> buffer, out int count)
    {
        if (attempt != Volatile.Read(ref _current))
        {
            throw new OperationCanceledException("The attempt was given up and its body is being sent again.");
        }

        count = 0;
        if (_overflowed || attempt.Offset >= _length)
        {
            return false;
        }

        count = Math.Min(buffer.Length, _length - attempt.Offset);
        _kept.AsSpan(attempt.Offset, count).CopyTo(buffer);
        attempt.Offset += count;
        return true;
    }

    /// <summary>Keeps what was read; an attempt given up meanwhile leaves the bytes for the next one to get.</summary>
    private void Keep(Attempt reader, ReadOnlySpan<byte> read)
    {
        if (_overflowed || read.IsEmpty)
        {
            return;
        }

        if (_length + (long)read.Length > limit)
        {
            _overflowed = true;
            _kept = [];
            _length = 0;
            return;
        }

        if (_length + read.Length > _kept.Length)
        {
            Array.Resize(ref _kept, (int)Math.Min(limit, Math.Max(_length + read.Length, Math.Max(256, _kept.Length * 2L))));
        }

        read.CopyTo(_kept.AsSpan(_length));
        _length += read.Length;
        if (reader == Volatile.Read(ref _current))
        {
            reader.Offset = _length;
        }
    }

    private sealed class Attempt(ReplayableBody body) : Stream
    {
        /// <summary>How much of what was kept this attempt has read.</summary>
        public int Offset;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            body.ReadAsync(this, buffer, cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            body.ReadAsync(this, buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => body.Read(this, buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer) => body.Read(this, buffer);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
