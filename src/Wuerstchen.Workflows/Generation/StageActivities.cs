using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wuerstchen.Models.IO;
using Wuerstchen.Pipeline;
using Wuerstchen.Pipeline.Diagnostics;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Generation.Batching;
using Wuerstchen.Pipeline.Models;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Workflows.Telemetry;

namespace Wuerstchen.Workflows.Generation;

/// <summary>A re-decode whose Stage C latents are gone: nothing to decode from, and recomputing would defeat its purpose.</summary>
public sealed class StageCMissingException(string blob)
    : PermanentFailureException($"The Stage C latents '{blob}' do not exist; generate the image again instead of re-decoding it.");

/// <summary>
/// The three stage activities: load the batch from its plan blob, run the stage under the generation's cancellation
/// (<see cref="GenerationCancellation"/>), publish progress. A failure another attempt cannot cure is thrown as a
/// <see cref="PermanentFailureException"/>, so the retry policy fails the generation at once.
/// </summary>
public sealed partial class StageActivities(GenerationStages stages, BatchPlanStore plans, IBlobStore store, GenerationCancellation cancellation,
    StageBatcher batcher, IOptions<WorkflowOptions> options, ILogger<StageActivities> logger)
{
    public const string StageC = "StageC";
    public const string StageB = "StageB";
    public const string StageA = "StageA";

    public Task<StageResult> RunStageCAsync(StageWork work, CancellationToken cancellationToken) =>
        RunAsync(StageC, work, async (batch, progress, token) =>
        {
            if (work.RequireStageC)
            {
                string blob = GenerationStages.StageCBlob(batch);
                if (!await store.ExistsAsync(blob, token).ConfigureAwait(false))
                    throw new StageCMissingException(blob);
                return new StageResult([blob], Reused: true);
            }
            return await stages.RunStageCAsync(batch, progress, token).ConfigureAwait(false);
        }, cancellationToken);

    public Task<StageResult> RunStageBAsync(StageWork work, CancellationToken cancellationToken) =>
        RunAsync(StageB, work, stages.RunStageBAsync, cancellationToken);

    public Task<StageResult> RunStageAAsync(StageWork work, CancellationToken cancellationToken) =>
        RunAsync(StageA, work, stages.RunStageAAsync, cancellationToken);

    /// <summary>
    /// Runs one stage in its own span of the generation's trace (<see cref="WorkflowTrace"/>) and logging scope, and
    /// records its duration, outcome and, for Stage C, the batch size and queue wait; Stage A counts the images it wrote.
    /// </summary>
    private async Task<StageResult> RunAsync(string stage, StageWork work, Func<GenerationBatch, IProgress<StageProgress>, CancellationToken, Task<StageResult>> run,
        CancellationToken cancellationToken)
    {
        string kind = work.Trace?.Kind ?? "generation";
        using var span = WuerstchenTelemetry.StartWorkflowSpan(stage, work.Trace?.TraceParent, work.Trace?.BulkJobId ?? work.GenerationId);
        span?.SetTag(WuerstchenTelemetry.Tags.GenerationId, work.GenerationId);
        span?.SetTag(WuerstchenTelemetry.Tags.BulkJobId, work.Trace?.BulkJobId);
        span?.SetTag(WuerstchenTelemetry.Tags.Stage, stage);
        using var scope = logger.BeginScope(new Dictionary<string, object?>
        {
            ["GenerationId"] = work.GenerationId,
            ["BulkJobId"] = work.Trace?.BulkJobId,
            ["Stage"] = stage,
        });
        long started = Stopwatch.GetTimestamp();
        string outcome = "failed";
        await using var watch = await cancellation.WatchAsync(work.GenerationId, cancellationToken).ConfigureAwait(false);
        GenerationBatch? batch = null;
        try
        {
            // One of the worker's stage slots (Wuerstchen:Batching:MaxConcurrentStageActivities) for the whole activity.
            using var slot = await batcher.EnterActivityAsync(watch.Token).ConfigureAwait(false);
            batch = await plans.ReadAsync(work.Batch, watch.Token).ConfigureAwait(false);
            GenerationTelemetry.Tag(span, batch);
            if (stage == StageC)
            {
                var kindTag = new KeyValuePair<string, object?>(WuerstchenTelemetry.Tags.Kind, kind);
                WuerstchenTelemetry.BatchSize.Record(GenerationTelemetry.Images(batch), kindTag);
                if (work.Trace is { } trace)
                    WuerstchenTelemetry.QueueWait.Record(Math.Max(0, (DateTimeOffset.UtcNow - trace.SubmittedAt).TotalSeconds), kindTag);
            }
            await using var progress = new ProgressPublisher(store, work.GenerationId, options.Value.ProgressInterval, logger);
            var result = await run(batch, watch.Observe(progress), watch.Token).ConfigureAwait(false);
            outcome = result.Reused ? "reused" : "completed";
            span?.SetTag(WuerstchenTelemetry.Tags.Reused, result.Reused);
            if (stage == StageA && !result.Reused)
                WuerstchenTelemetry.ImagesGenerated.Add(result.Blobs.Count, new KeyValuePair<string, object?>(WuerstchenTelemetry.Tags.DecoderModel, batch.Settings.DecoderModel));
            return result;
        }
        catch (OperationCanceledException) when (watch.CancelledByClient)
        {
            outcome = "cancelled";
            LogStopped(stage, work.GenerationId);
            throw new GenerationCancelledException(work.GenerationId);
        }
        catch (Exception e) when (Permanent(stage, batch, e) is { } permanent)
        {
            outcome = "failed_permanently";
            WuerstchenTelemetry.Fail(span, permanent);
            LogPermanent(e, stage, work.GenerationId);
            if (ReferenceEquals(permanent, e))
                throw;
            throw permanent;
        }
        catch (Exception e)
        {
            WuerstchenTelemetry.Fail(span, e);
            throw;
        }
        finally
        {
            double seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            span?.SetTag(WuerstchenTelemetry.Tags.Outcome, outcome);
            span?.SetTag(WuerstchenTelemetry.Tags.DurationSeconds, seconds);
            WuerstchenTelemetry.StageDuration.Record(seconds, new TagList
            {
                { WuerstchenTelemetry.Tags.Stage, stage },
                { WuerstchenTelemetry.Tags.Outcome, outcome },
                { WuerstchenTelemetry.Tags.Kind, kind },
            });
            WuerstchenTelemetry.SampleGpuMemory();
        }
    }

    /// <summary>The permanent failure <paramref name="e"/> stands for; null when another attempt could succeed.</summary>
    private static Exception? Permanent(string stage, GenerationBatch? batch, Exception e) => e switch
    {
        PermanentFailureException or ModelNotLoadableException => e,
        _ when Failures.IsOutOfMemory(e) => new StageOutOfMemoryException(stage, Describe(batch), e),
        InvalidDataException or SafetensorsFormatException or JsonException => new InvalidStageDataException(stage, ErrorText.WithoutPaths(e.Message)!, e),
        _ => null,
    };

    private static string Describe(GenerationBatch? batch) => batch is null
        ? "this batch"
        : $"{batch.Items.Count * batch.Settings.ImagesPerPrompt} image(s) of {batch.Settings.Width}×{batch.Settings.Height}";

    [LoggerMessage(Level = LogLevel.Information, Message = "{Stage} of generation {GenerationId} stopped: the generation was cancelled")]
    private partial void LogStopped(string stage, string generationId);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Stage} of generation {GenerationId} failed permanently; it is not retried")]
    private partial void LogPermanent(Exception exception, string stage, string generationId);
}
