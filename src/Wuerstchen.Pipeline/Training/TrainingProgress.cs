using System.Diagnostics;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Wuerstchen.Pipeline.Storage;

namespace Wuerstchen.Pipeline.Training;

/// <summary>
/// Where a running start of a fine-tune is inside its current activity (<c>training/runs/{run}/progress.json</c>):
/// preparing (items encoded of how many) or training (the step, its loss and learning rate, steps per second over
/// this chunk and the time left to the run's last step), which checkpoint this chunk resumed from and which newer
/// ones it skipped, and why.
/// </summary>
/// <param name="StartId">The start that wrote it; a reader ignores progress of an earlier start.</param>
/// <param name="ChunkStart">The step this chunk began at (the checkpoint it resumed from, 0 for a new run).</param>
/// <param name="ResumedFrom">The checkpoint this chunk resumed from; null when it began from the base prior.</param>
public sealed record TrainingProgress(
    string StartId,
    string Phase,
    int Step,
    int TotalSteps,
    int ChunkStart,
    double? Loss,
    double? LearningRate,
    double? StepsPerSecond,
    double? EtaSeconds,
    int? ResumedFrom,
    IReadOnlyList<SkippedCheckpoint> Skipped,
    int? ItemsDone,
    int? ItemsTotal,
    DateTimeOffset UpdatedAt)
{
    public const string Preparing = "Preparing";
    public const string Training = "Training";

    public static Task<TrainingProgress?> ReadAsync(IBlobStore store, string runId, CancellationToken cancellationToken) =>
        BlobReads.RetryWhileReplacedAsync(() => BlobJson.TryReadAsync<TrainingProgress>(store, TrainingBlobs.Progress(runId), cancellationToken), cancellationToken);
}

/// <summary>
/// Publishes a chunk's progress without ever blocking the training loop: the latest report is written to
/// <c>progress.json</c> at most once per <see cref="TrainingOptions.ProgressInterval"/> in the background, and the
/// steps taken so far to the loss log at most once per <see cref="TrainingOptions.LossLogInterval"/>. Disposing
/// writes the last report (never the loss log: the chunk's end writes that itself, after its checkpoint).
/// </summary>
public sealed partial class TrainingProgressPublisher : IAsyncDisposable
{
    private readonly IBlobStore _store;
    private readonly string _runId;
    private readonly int _chunkStart;
    private readonly TimeSpan _interval;
    private readonly TimeSpan _lossInterval;
    private readonly ILogger _logger;
    private readonly Channel<TrainingProgress> _latest = Channel.CreateBounded<TrainingProgress>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropOldest });
    private readonly List<LossPoint> _points = [];
    private readonly Lock _pointsLock = new();
    private readonly Stopwatch _sinceLossWrite = Stopwatch.StartNew();
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _writer;
    private int _pointsWritten;

    public TrainingProgressPublisher(IBlobStore store, string runId, int chunkStart, TrainingOptions options, ILogger logger)
    {
        _store = store;
        _runId = runId;
        _chunkStart = chunkStart;
        _interval = options.ProgressInterval;
        _lossInterval = options.LossLogInterval;
        _logger = logger;
        _writer = WriteLoopAsync();
    }

    public void Report(TrainingProgress progress) => _latest.Writer.TryWrite(progress);

    /// <summary>A step's loss point, for the in-chunk loss log writes.</summary>
    public void Add(LossPoint point)
    {
        lock (_pointsLock)
            _points.Add(point);
    }

    private async Task WriteLoopAsync()
    {
        await foreach (var progress in _latest.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            try
            {
                await BlobJson.WriteAsync(_store, TrainingBlobs.Progress(_runId), progress, CancellationToken.None).ConfigureAwait(false);
                if (!_latest.Reader.Completion.IsCompleted && _sinceLossWrite.Elapsed >= _lossInterval)
                    await WriteLossLogAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Progress is advisory: a failed write must not fail the chunk it describes.
                LogProgressWriteFailed(e, _runId);
            }
            if (!_latest.Reader.Completion.IsCompleted && !_stopping.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(_interval, _stopping.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // Disposing: write the last report now instead of at the end of the interval.
                }
            }
        }
    }

    private async Task WriteLossLogAsync()
    {
        LossPoint[] points;
        lock (_pointsLock)
            points = _points.ToArray();
        _sinceLossWrite.Restart();
        if (points.Length == _pointsWritten)
            return;
        await LossLog.AppendAsync(_store, _runId, _chunkStart, points, CancellationToken.None).ConfigureAwait(false);
        _pointsWritten = points.Length;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not write the progress of fine-tune run {RunId}")]
    private partial void LogProgressWriteFailed(Exception exception, string runId);

    /// <summary>Writes the last report at once (never waiting out the interval) and stops; later calls only wait for that.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_latest.Writer.TryComplete())
            await _stopping.CancelAsync().ConfigureAwait(false);
        await _writer.ConfigureAwait(false);
    }
}
