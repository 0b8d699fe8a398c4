using System.Text;
using Azure;
using Microsoft.Extensions.Logging.Abstractions;
using Wuerstchen.Models.Tests;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Storage;

namespace Wuerstchen.Pipeline.Tests.Generation;

public sealed class ProgressPublisherTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task DisposingWritesTheLastReportWithoutWaitingOutTheInterval()
    {
        using var temp = new TempDirectory();
        var store = new FileSystemBlobStore(temp.Path);
        var publisher = new ProgressPublisher(store, "gen-c", TimeSpan.FromHours(1), NullLogger.Instance);
        publisher.Report(new StageProgress("StageB", 1, 12, DateTimeOffset.UtcNow));
        // The first report is written at once; the writer then waits an interval before the next.
        while (await ProgressPublisher.ReadAsync(store, "gen-c", Ct) is null)
            await Task.Delay(10, Ct);
        publisher.Report(new StageProgress("StageB", 12, 12, DateTimeOffset.UtcNow));

        // A stage ends by disposing its publisher: that must not hold the stage for the rest of the hour.
        await publisher.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30), Ct);

        var last = await ProgressPublisher.ReadAsync(store, "gen-c", Ct);
        Assert.Equal(12, last!.Step);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task AReadThatOverlapsARewriteReadsTheNewerVersion(int overlaps)
    {
        using var temp = new TempDirectory();
        var store = new RewrittenWhileRead(new FileSystemBlobStore(temp.Path), overlaps);
        string json = """{"Stage":"StageB","Step":3,"StepCount":12,"UpdatedAt":"2026-11-30T12:00:00+00:00"}""";
        await store.WriteAsync(ProgressPublisher.BlobNameFor("gen-a"), new MemoryStream(Encoding.UTF8.GetBytes(json)), cancellationToken: Ct);

        var progress = await ProgressPublisher.ReadAsync(store, "gen-a", Ct);

        Assert.Equal(("StageB", 3, 12), (progress!.Stage, progress.Step, progress.StepCount));
        Assert.Equal(overlaps + 1, store.Opened);
    }

    [Fact]
    public async Task AReadThatKeepsFailingFailsAfterThreeAttempts()
    {
        using var temp = new TempDirectory();
        var store = new RewrittenWhileRead(new FileSystemBlobStore(temp.Path), overlaps: 10);
        await store.WriteAsync(ProgressPublisher.BlobNameFor("gen-b"), new MemoryStream("{}"u8.ToArray()), cancellationToken: Ct);

        var error = await Assert.ThrowsAsync<RequestFailedException>(() => ProgressPublisher.ReadAsync(store, "gen-b", Ct));

        Assert.Equal((412, 3), (error.Status, store.Opened));
    }

    /// <summary>A store whose first reads fail as Azure's do when the blob is replaced between opening and reading it.</summary>
    private sealed class RewrittenWhileRead(IBlobStore inner, int overlaps) : IBlobStore
    {
        public int Opened { get; private set; }
        public string Description => inner.Description;
        public Task<bool> ExistsAsync(string name, CancellationToken cancellationToken = default) => inner.ExistsAsync(name, cancellationToken);
        public Task<BlobItemInfo?> GetInfoAsync(string name, CancellationToken cancellationToken = default) => inner.GetInfoAsync(name, cancellationToken);
        public Task WriteAsync(string name, Stream content, BlobWriteOptions? options = null, CancellationToken cancellationToken = default) =>
            inner.WriteAsync(name, content, options, cancellationToken);
        public Task<bool> DeleteAsync(string name, CancellationToken cancellationToken = default) => inner.DeleteAsync(name, cancellationToken);
        public IAsyncEnumerable<BlobItemInfo> ListAsync(string prefix, CancellationToken cancellationToken = default) => inner.ListAsync(prefix, cancellationToken);
        public Task<Uri?> GetReadUriAsync(string name, TimeSpan lifetime, CancellationToken cancellationToken = default) => inner.GetReadUriAsync(name, lifetime, cancellationToken);

        public async Task<Stream> OpenReadAsync(string name, CancellationToken cancellationToken = default)
        {
            var stream = await inner.OpenReadAsync(name, cancellationToken);
            return ++Opened <= overlaps ? new ReplacedStream(stream) : stream;
        }
    }

    private sealed class ReplacedStream(Stream inner) : Stream
    {
        private static RequestFailedException Replaced() => new(412, "The condition specified using HTTP conditional header(s) is not met.", "ConditionNotMet", null);
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw Replaced();
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => throw Replaced();
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => throw Replaced();
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        protected override void Dispose(bool disposing)
        {
            if (disposing)
                inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
