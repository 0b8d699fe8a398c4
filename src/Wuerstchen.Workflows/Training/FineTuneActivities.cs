using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Wuerstchen.Pipeline.Diagnostics;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Pipeline.Training;

namespace Wuerstchen.Workflows.Training;

/// <summary>The published version as the orchestration records it.</summary>
public sealed record PublishedVersion(string VersionId, string Revision, string Name, string RawName, string RevisionName, string RawRevisionName, string DatasetVersion);

/// <summary>The prepare activity's input: the run, and the start (lease) that prepares it.</summary>
public sealed record PrepareWork(string RunId, string StartId, string InstanceId);

/// <summary>
/// The fine-tune's activities: each reads the run's plan from the store and does one thing, in a span of the run's
/// trace (its trace id derives from the run id) and a logging scope with the run id.
/// </summary>
public sealed class FineTuneActivities(IBlobStore store, DatasetPreparer preparer, PriorFineTuner trainer, ValidationGridRenderer grids, ModelVersionPublisher publisher,
    ILogger<FineTuneActivities> logger)
{
    public const string Prepare = "PrepareFineTuneData";
    public const string TrainChunk = "TrainFineTuneChunk";
    public const string RenderGrid = "RenderFineTuneGrid";
    public const string Publish = "PublishFineTunedModel";

    /// <summary>
    /// Takes the run over for this start (its lease: an activity of an earlier, cancelled or terminated start stops at
    /// its next step), then prepares the dataset. The lease is written here, by the start the engine actually runs,
    /// never by a caller whose start was refused, so a duplicate or retried start cannot stop the run it duplicates.
    /// </summary>
    public Task<PreparedSummary> PrepareAsync(PrepareWork work, CancellationToken cancellationToken) =>
        InSpanAsync(Prepare, work.RunId, async _ =>
        {
            await FineTuneRuns.WriteLeaseAsync(store, work.RunId, new RunLease(work.StartId, work.InstanceId, DateTimeOffset.UtcNow), cancellationToken).ConfigureAwait(false);
            var run = await ReadRunAsync(work.RunId, cancellationToken).ConfigureAwait(false);
            return await preparer.PrepareAsync(run, cancellationToken, work.StartId).ConfigureAwait(false);
        });

    /// <summary>One chunk of optimiser steps; records the mean step time and the loss the chunk ended on.</summary>
    public Task<ChunkOutcome> TrainChunkAsync(ChunkWork work, CancellationToken cancellationToken) =>
        InSpanAsync(TrainChunk, work.RunId, async span =>
        {
            long started = Stopwatch.GetTimestamp();
            var chunk = await trainer.TrainChunkAsync(await ReadRunAsync(work.RunId, cancellationToken).ConfigureAwait(false), work.StartId, cancellationToken).ConfigureAwait(false);
            span?.SetTag(WuerstchenTelemetry.Tags.Step, chunk.Step);
            span?.SetTag(WuerstchenTelemetry.Tags.StepsTaken, chunk.StepsTaken);
            span?.SetTag(WuerstchenTelemetry.Tags.Loss, chunk.Loss);
            if (chunk.StepsTaken > 0)
                WuerstchenTelemetry.TrainingStepDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds / chunk.StepsTaken);
            if (chunk.Loss is { } loss && double.IsFinite(loss))
                WuerstchenTelemetry.TrainingLoss.Record(loss);
            return chunk;
        });

    public Task<string> RenderGridAsync(GridWork work, CancellationToken cancellationToken) =>
        InSpanAsync(RenderGrid, work.RunId, async _ => await grids.RenderAsync(await ReadRunAsync(work.RunId, cancellationToken).ConfigureAwait(false), work.Step, cancellationToken).ConfigureAwait(false));

    public Task<PublishedVersion> PublishAsync(string runId, CancellationToken cancellationToken) =>
        InSpanAsync(Publish, runId, async _ =>
        {
            var version = await publisher.PublishAsync(await ReadRunAsync(runId, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
            return new PublishedVersion(version.VersionId, version.Revision, version.Name, version.RawName, version.RevisionName, version.RawRevisionName, version.DatasetVersion);
        });

    private async Task<T> InSpanAsync<T>(string name, string runId, Func<Activity?, Task<T>> work)
    {
        using var span = WuerstchenTelemetry.StartWorkflowSpan(name, null, runId);
        span?.SetTag(WuerstchenTelemetry.Tags.FineTuneRunId, runId);
        using var scope = logger.BeginScope(new Dictionary<string, object?> { ["FineTuneRunId"] = runId, ["Activity"] = name });
        try
        {
            return await work(span).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            WuerstchenTelemetry.Fail(span, e);
            throw;
        }
    }

    private Task<FineTuneRun> ReadRunAsync(string runId, CancellationToken cancellationToken) => FineTuneRuns.ReadAsync(store, runId, cancellationToken);
}
