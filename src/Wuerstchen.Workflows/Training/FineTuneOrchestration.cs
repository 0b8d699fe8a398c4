using Microsoft.DurableTask;
using Wuerstchen.Pipeline.Training;

namespace Wuerstchen.Workflows.Training;

/// <summary>
/// Input of <see cref="FineTuneOrchestration"/>: the run (its plan is in the store) and how far it got; each
/// ContinueAsNew carries the progress forward so the history stays one chunk long.
/// </summary>
/// <param name="StartId">This start's lease on the run (see <see cref="RunLease"/>).</param>
public sealed record FineTuneInput(string RunId, string StartId, RetrySettings Retry, PreparedSummary? Prepared = null, FineTuneProgress? Progress = null);

/// <summary>The training activity's input.</summary>
public sealed record ChunkWork(string RunId, string StartId);

/// <summary>Where a run stands after its last chunk.</summary>
public sealed record FineTuneProgress(int Step, int TotalSteps, double? Loss, double? LearningRate, string? LatestGrid, string? LatestCheckpoint,
    int? ResumedFrom, IReadOnlyList<SkippedCheckpoint> Skipped, int Chunks);

/// <summary>A finished run: the model version it published.</summary>
/// <param name="ModelName">The name that follows the version's newest revision (<c>finetuned/{id}</c>).</param>
/// <param name="RevisionName">The revision this run published, for good (<c>finetuned/{id}/{revision}</c>).</param>
public sealed record FineTuneResult(string RunId, string VersionId, string ModelName, string RawModelName, int Steps, double? FinalLoss, string? LatestGrid, string DatasetVersion,
    string? Revision = null, string? RevisionName = null, string? RawRevisionName = null);

/// <summary>The orchestration's custom status, read by the status API.</summary>
public sealed record FineTuneCustomStatus(string Phase, string RunId, int Step, int TotalSteps, double? Loss, double? LearningRate, string? LatestGrid, string? LatestCheckpoint,
    int? ResumedFrom = null, IReadOnlyList<SkippedCheckpoint>? Skipped = null);

/// <summary>The grid activity's input.</summary>
public sealed record GridWork(string RunId, int Step);

/// <summary>
/// <c>FineTuneStageC</c>: prepare the dataset once (latents and text embeddings into the cache), then one training
/// chunk per execution — N optimiser steps ending in a checkpoint, then the validation grid of that checkpoint — and
/// ContinueAsNew until the run reaches its total; then publish the model version. Every activity starts from what
/// the store holds (the newest good checkpoint), so a retried, crashed or cancelled activity resumes where the last
/// good checkpoint left off.
/// </summary>
public static class FineTuneOrchestration
{
    public const string Name = "FineTuneStageC";

    public static async Task<FineTuneResult?> RunAsync(TaskOrchestrationContext context, FineTuneInput input)
    {
        var options = input.Retry.ToTaskOptions();
        var progress = input.Progress;
        var prepared = input.Prepared;
        if (prepared is null)
        {
            context.SetCustomStatus(Status("Preparing", input.RunId, progress));
            prepared = await context.CallActivityAsync<PreparedSummary>(FineTuneActivities.Prepare, new PrepareWork(input.RunId, input.StartId, context.InstanceId), options);
            if (prepared.Items == 0)
                throw new InvalidOperationException(prepared.Problems == 0
                    ? $"Run '{input.RunId}' has no trainable items: the dataset holds no captioned images."
                    : $"Run '{input.RunId}' has no trainable items: none of the dataset's images can be used ({prepared.Problems} problem(s), listed in {TrainingBlobs.DatasetReport(input.RunId)}).");
        }

        context.SetCustomStatus(Status("Training", input.RunId, progress));
        var chunk = await context.CallActivityAsync<ChunkOutcome>(FineTuneActivities.TrainChunk, new ChunkWork(input.RunId, input.StartId), options);
        string? grid = progress?.LatestGrid;
        if (chunk.StepsTaken > 0 || grid is null)
        {
            context.SetCustomStatus(Status("Rendering", input.RunId, progress));
            grid = await context.CallActivityAsync<string>(FineTuneActivities.RenderGrid, new GridWork(input.RunId, chunk.Step), options);
        }
        // ResumedFrom is where this start began: set by its first chunk only (later chunks always continue from a
        // checkpoint). Skipped checkpoints accumulate, each with the reason it was first skipped for.
        var skipped = (progress?.Skipped ?? []).Concat(chunk.Skipped).GroupBy(s => s.Step).Select(g => g.First()).OrderByDescending(s => s.Step).ToArray();
        progress = new FineTuneProgress(chunk.Step, chunk.TotalSteps, chunk.Loss, chunk.LearningRate, grid, chunk.Checkpoint,
            progress is null ? chunk.ResumedFrom : progress.ResumedFrom, skipped, (progress?.Chunks ?? 0) + 1);

        if (!chunk.Done)
        {
            context.SetCustomStatus(Status("Training", input.RunId, progress));
            context.ContinueAsNew(input with { Prepared = prepared, Progress = progress });
            return null;
        }

        context.SetCustomStatus(Status("Publishing", input.RunId, progress));
        var version = await context.CallActivityAsync<PublishedVersion>(FineTuneActivities.Publish, input.RunId, options);
        context.SetCustomStatus(Status("Completed", input.RunId, progress));
        return new FineTuneResult(input.RunId, version.VersionId, version.Name, version.RawName, chunk.Step, chunk.Loss, grid, version.DatasetVersion,
            version.Revision, version.RevisionName, version.RawRevisionName);
    }

    private static FineTuneCustomStatus Status(string phase, string runId, FineTuneProgress? progress) =>
        new(phase, runId, progress?.Step ?? 0, progress?.TotalSteps ?? 0, progress?.Loss, progress?.LearningRate, progress?.LatestGrid, progress?.LatestCheckpoint,
            progress?.ResumedFrom, progress?.Skipped);
}
