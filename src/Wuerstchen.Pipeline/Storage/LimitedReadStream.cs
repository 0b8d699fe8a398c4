namespace Wuerstchen.Pipeline.Storage;

/// <summary>Input that is larger than the limit its reader enforces, detected while reading, before the rest is read.</summary>
public sealed class InputTooLargeException(string what, long limit)
    : IOException($"{what} is larger than the limit of {limit} bytes.")
{
    public long Limit { get; } = limit;
}

/// <summary>
/// A read-only view of a stream that throws <see cref="InputTooLargeException"/> as soon as more than
/// <c>limit</c> bytes have come through, so a reader never buffers more than the limit of an oversized input.
/// </summary>
public sealed class LimitedReadStream(Stream inner, long limit, string what, bool leaveOpen = false) : Stream
{
    private long _read;

    public long BytesRead => _read;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => _read; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Count(inner.Read(buffer, offset, Allowed(count)));

    public override int Read(Span<byte> buffer) => Count(inner.Read(buffer[..Allowed(buffer.Length)]));

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        Count(await inner.ReadAsync(buffer[..Allowed(buffer.Length)], cancellationToken).ConfigureAwait(false));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <summary>Asks for at most one byte past the limit: enough to tell an input of exactly the limit from a larger one.</summary>
    private int Allowed(int count) => limit - _read >= count ? count : (int)(limit - _read + 1);

    private int Count(int read)
    {
        _read += read;
        if (_read > limit)
            throw new InputTooLargeException(what, limit);
        return read;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && !leaveOpen)
            inner.Dispose();
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        if (!leaveOpen)
            await inner.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
