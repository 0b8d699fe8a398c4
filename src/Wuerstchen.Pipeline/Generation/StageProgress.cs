using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Wuerstchen.Pipeline.Storage;

namespace Wuerstchen.Pipeline.Generation;

/// <summary>
/// Where a running generation is: the stage and the step (1-based) of how many; <see cref="State"/> says whether the
/// stage waits for a batch (<see cref="WaitingForBatch"/>, step 0) or runs, and <see cref="BatchImages"/> how many
/// images (its own and other requests') its model call holds.
/// </summary>
public sealed record StageProgress(string Stage, int Step, int StepCount, DateTimeOffset UpdatedAt, string? State = null, int? BatchImages = null)
{
    public const string WaitingForBatch = "waitingForBatch";
    public const string Running = "running";
}

/// <summary>
/// Publishes a generation's step progress to a small blob the status API reads. Reports from the sampling loop never
/// block it: the latest one is written at most once per interval in the background, and the last one on dispose, at
/// once (a stage never waits out the interval at its end).
/// </summary>
public sealed partial class ProgressPublisher : IProgress<StageProgress>, IAsyncDisposable
{
    private readonly ILogger _logger;
    private readonly Channel<StageProgress> _latest = Channel.CreateBounded<StageProgress>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropOldest });
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _writer;

    public ProgressPublisher(IBlobStore store, string generationId, TimeSpan interval, ILogger logger)
    {
        _logger = logger;
        _writer = WriteLoopAsync(store, BlobNameFor(generationId), interval);
    }

    public static string BlobNameFor(string generationId) => $"generations/{generationId}/progress.json";

    public void Report(StageProgress value) => _latest.Writer.TryWrite(value);

    public static async Task<StageProgress?> ReadAsync(IBlobStore store, string generationId, CancellationToken cancellationToken)
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                await using var stream = await store.OpenReadAsync(BlobNameFor(generationId), cancellationToken).ConfigureAwait(false);
                return await JsonSerializer.DeserializeAsync<StageProgress>(stream, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (BlobNotFoundException)
            {
                return null;
            }
            // The blob is rewritten about once a second while a stage runs, and Azure Blob Storage reads are pinned to the
            // version they opened: a read that overlaps a rewrite fails (412), so the newer version is read instead.
            catch (Azure.RequestFailedException e) when (e.Status == 412 && attempt < 3)
            {
            }
        }
    }

    private async Task WriteLoopAsync(IBlobStore store, string name, TimeSpan interval)
    {
        await foreach (var progress in _latest.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            try
            {
                using var content = new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(progress));
                await store.WriteAsync(name, content, new BlobWriteOptions { ContentType = "application/json" }).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Progress is advisory: a failed write must not fail the generation it describes.
                LogProgressWriteFailed(e, name);
            }
            if (!_latest.Reader.Completion.IsCompleted && !_stopping.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(interval, _stopping.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // Disposing: write the last report now instead of at the end of the interval.
                }
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not write progress to {BlobName}")]
    private partial void LogProgressWriteFailed(Exception exception, string blobName);

    /// <summary>Writes the last report at once and stops; later calls only wait for that.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_latest.Writer.TryComplete())
            await _stopping.CancelAsync().ConfigureAwait(false);
        await _writer.ConfigureAwait(false);
    }
}
