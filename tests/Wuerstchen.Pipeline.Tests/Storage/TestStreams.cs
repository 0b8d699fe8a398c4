namespace Wuerstchen.Pipeline.Tests.Storage;

/// <summary>Reads from a byte array without seeking or telling its length, like a network or pipe stream.</summary>
internal class ForwardOnlyStream(byte[] data) : Stream
{
    protected int Offset { get; private set; }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) =>
        ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var end = await ReadableEndAsync(cancellationToken);
        var n = Math.Min(buffer.Length, end - Offset);
        data.AsSpan(Offset, n).CopyTo(buffer.Span);
        Offset += n;
        return n;
    }

    /// <summary>How far the next read may go: the end, or a point part-way where it has to stop first.</summary>
    protected virtual ValueTask<int> ReadableEndAsync(CancellationToken cancellationToken) => ValueTask.FromResult(data.Length);

    protected int DataLength => data.Length;

    public override void Flush() => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>Hands out the bytes before <paramref name="gateAt"/>, then waits for <see cref="Open"/>: a slow writer caught mid-way.</summary>
internal sealed class GatedStream(byte[] data, int gateAt) : ForwardOnlyStream(data)
{
    private readonly TaskCompletionSource _reached = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when the reader has taken everything before the gate and asks for more.</summary>
    public Task Reached => _reached.Task;

    public void Open() => _open.TrySetResult();

    protected override async ValueTask<int> ReadableEndAsync(CancellationToken cancellationToken)
    {
        if (Offset < gateAt)
        {
            return gateAt;
        }

        _reached.TrySetResult();
        await _open.Task.WaitAsync(cancellationToken);
        return DataLength;
    }
}

/// <summary>Hands out the bytes before <paramref name="failAt"/>, then fails: a source that dies mid-way.</summary>
internal sealed class FailingStream(byte[] data, int failAt) : ForwardOnlyStream(data)
{
    protected override ValueTask<int> ReadableEndAsync(CancellationToken cancellationToken) =>
        Offset < failAt ? ValueTask.FromResult(failAt) : throw new IOException("The source failed part-way.");
}
