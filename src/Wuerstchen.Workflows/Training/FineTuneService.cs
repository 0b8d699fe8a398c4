using System.Text.Json;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wuerstchen.Pipeline;
using Wuerstchen.Pipeline.Models;
using Wuerstchen.Pipeline.Diagnostics;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Pipeline.Training;
using Wuerstchen.Workflows.Generation;

namespace Wuerstchen.Workflows.Training;

/// <summary>Where a fine-tune stands, for the status API.</summary>
public sealed record FineTuneStatus(
    string Id,
    string? RunId,
    string RuntimeStatus,
    string? Phase,
    int Step,
    int TotalSteps,
    double? Loss,
    double? LearningRate,
    string? LatestGrid,
    IReadOnlyList<CheckpointInfo> Checkpoints,
    IReadOnlyList<SkippedCheckpoint> SkippedCheckpoints,
    int? ResumedFrom,
    IReadOnlyList<LossPoint> RecentLoss,
    int? DatasetItems,
    IReadOnlyList<DatasetProblem> DatasetProblems,
    FineTuneResult? Result,
    string? Error,
    DateTimeOffset CreatedAt,
    DateTimeOffset LastUpdatedAt,
    FineTuneRun? Run);

/// <summary>
/// Starts, inspects and cancels fine-tunes and lists the published model versions; shared by the HTTP API and the
/// retraining timer. A run's instance id is its run id (the timer uses one id per dataset instead, so two runs of a
/// dataset never overlap). Starting a run id that already has checkpoints resumes it from its last good one.
/// </summary>
public sealed partial class FineTuneService(IBlobStore store, ModelLocator models, FineTunedModels versions, CheckpointStore checkpoints,
    IOptions<TrainingOptions> training, IOptions<WorkflowOptions> workflowOptions, ILogger<FineTuneService> logger)
{
    public const int RecentLossPoints = 100;

    public static string NewRunId() => "ft-" + Guid.NewGuid().ToString("N")[..24];

    public async Task<StartOutcome> StartAsync(DurableTaskClient client, FineTuneRequest? request, CancellationToken cancellationToken)
    {
        var validated = FineTuneRequestValidator.Validate(request, training.Value, models.Problem, NewRunId);
        if (!validated.IsValid)
            return new StartOutcome(StartDisposition.Invalid, null, validated.Errors);
        return await StartRunAsync(client, validated.Run!, validated.Run!.RunId, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Starts <paramref name="run"/> as instance <paramref name="instanceId"/> unless that instance is pending or
    /// running (checked first, and again by the engine through dedupe statuses, which closes the race between two
    /// starters); a run id already used for other training is a conflict.
    /// </summary>
    public async Task<StartOutcome> StartRunAsync(DurableTaskClient client, FineTuneRun run, string instanceId, CancellationToken cancellationToken)
    {
        if (await IsActiveAsync(client, instanceId, cancellationToken).ConfigureAwait(false))
            return new StartOutcome(StartDisposition.Existing, instanceId);
        if (await FineTuneRuns.SaveAsync(store, run, cancellationToken).ConfigureAwait(false) == RunPlanOutcome.Conflict)
            return new StartOutcome(StartDisposition.Conflict, instanceId);
        // This start takes the run over: an activity of an earlier (terminated or replaced) start stops at its next step.
        string startId = Guid.NewGuid().ToString("N");
        await FineTuneRuns.WriteLeaseAsync(store, run.RunId, new RunLease(startId, instanceId, DateTimeOffset.UtcNow), cancellationToken).ConfigureAwait(false);

        // A fine-tune's trace id derives from its run id, so every chunk of every ContinueAsNew joins it (FineTuneActivities).
        var caller = System.Diagnostics.Activity.Current;
        using var span = WuerstchenTelemetry.StartWorkflowSpan("FineTuneStageC submit", null, run.RunId, System.Diagnostics.ActivityKind.Producer);
        span?.SetTag(WuerstchenTelemetry.Tags.FineTuneRunId, run.RunId);
        if (caller is not null)
            span?.AddLink(new System.Diagnostics.ActivityLink(caller.Context));
        var input = new FineTuneInput(run.RunId, startId, workflowOptions.Value.Retry);
        var options = new StartOrchestrationOptions(instanceId).WithDedupeStatuses(OrchestrationRuntimeStatus.Pending, OrchestrationRuntimeStatus.Running);
        try
        {
            await client.ScheduleNewOrchestrationInstanceAsync(FineTuneOrchestration.Name, input, options, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (IsAlreadyRunning(e))
        {
            return new StartOutcome(StartDisposition.Existing, instanceId);
        }
        LogStarted(run.RunId, instanceId, run.Dataset.ToString());
        return new StartOutcome(StartDisposition.Started, instanceId);
    }

    /// <summary>Where the fine-tune stands; null when there is none, or the id is of another kind (a generation, a bulk job).</summary>
    public async Task<FineTuneStatus?> GetStatusAsync(DurableTaskClient client, string id, CancellationToken cancellationToken)
    {
        var instance = await GetFineTuneAsync(client, id, cancellationToken).ConfigureAwait(false);
        if (instance is null)
            return null;
        var input = instance.SerializedInput is null ? null : instance.ReadInputAs<FineTuneInput>();
        var custom = instance.SerializedCustomStatus is { } status ? JsonSerializer.Deserialize<FineTuneCustomStatus>(status) : null;
        var result = instance.RuntimeStatus == OrchestrationRuntimeStatus.Completed && instance.SerializedOutput is not null ? instance.ReadOutputAs<FineTuneResult>() : null;
        string? runId = input?.RunId ?? custom?.RunId;
        var progress = input?.Progress;

        FineTuneRun? run = null;
        IReadOnlyList<CheckpointInfo> checkpointList = [];
        IReadOnlyList<LossPoint> loss = [];
        PreparedDataset? prepared = null;
        if (runId is not null)
        {
            run = await FineTuneRuns.TryReadAsync(store, runId, cancellationToken).ConfigureAwait(false);
            checkpointList = await checkpoints.ListAsync(runId, cancellationToken).ConfigureAwait(false);
            var log = await LossLog.ReadAsync(store, runId, cancellationToken).ConfigureAwait(false);
            loss = log.Skip(Math.Max(0, log.Count - RecentLossPoints)).ToArray();
            prepared = await ReadPreparedAsync(runId, cancellationToken).ConfigureAwait(false);
        }
        var latest = loss.LastOrDefault(p => p.Loss is not null);
        return new FineTuneStatus(
            id,
            runId,
            instance.RuntimeStatus.ToString(),
            custom?.Phase,
            latest?.Step ?? custom?.Step ?? 0,
            run?.Recipe.TotalSteps ?? custom?.TotalSteps ?? 0,
            latest?.Loss ?? custom?.Loss,
            latest?.LearningRate ?? custom?.LearningRate,
            result?.LatestGrid ?? custom?.LatestGrid ?? progress?.LatestGrid,
            checkpointList,
            custom?.Skipped ?? progress?.Skipped ?? [],
            custom?.ResumedFrom ?? progress?.ResumedFrom,
            loss,
            prepared?.Items.Count,
            prepared?.Problems ?? [],
            result,
            ErrorText.WithoutPaths(instance.FailureDetails?.ErrorMessage),
            instance.CreatedAt,
            instance.LastUpdatedAt,
            run);
    }

    /// <summary>
    /// Stops a pending or running fine-tune: releases its run's lease (the training loop stops at its next step,
    /// without a checkpoint) and terminates the instance. False when it does not exist (or is of another kind) or has
    /// already ended.
    /// </summary>
    public async Task<bool> CancelAsync(DurableTaskClient client, string id, CancellationToken cancellationToken)
    {
        var instance = await GetFineTuneAsync(client, id, cancellationToken).ConfigureAwait(false);
        if (instance is null || instance.IsCompleted)
            return false;
        if (instance.SerializedInput is not null && instance.ReadInputAs<FineTuneInput>() is { } input)
            await FineTuneRuns.ReleaseLeaseAsync(store, input.RunId, cancellationToken).ConfigureAwait(false);
        await client.TerminateInstanceAsync(id, "Cancelled by the client.", cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>The FineTuneStageC instance with this id; null for none or another kind.</summary>
    private static async Task<OrchestrationMetadata?> GetFineTuneAsync(DurableTaskClient client, string id, CancellationToken cancellationToken)
    {
        var instance = await client.GetInstanceAsync(id, getInputsAndOutputs: true, cancellationToken).ConfigureAwait(false);
        return instance?.Name == FineTuneOrchestration.Name ? instance : null;
    }

    /// <summary>The published fine-tuned versions, newest first.</summary>
    public Task<IReadOnlyList<ModelVersion>> ListModelsAsync(CancellationToken cancellationToken) => versions.ListAsync(cancellationToken);

    private async Task<PreparedDataset?> ReadPreparedAsync(string runId, CancellationToken cancellationToken)
    {
        try
        {
            await using var stream = await store.OpenReadAsync(TrainingBlobs.Prepared(runId), cancellationToken).ConfigureAwait(false);
            return await JsonSerializer.DeserializeAsync<PreparedDataset>(stream, new JsonSerializerOptions(JsonSerializerDefaults.Web), cancellationToken).ConfigureAwait(false);
        }
        catch (BlobNotFoundException)
        {
            return null;
        }
    }

    internal static async Task<bool> IsActiveAsync(DurableTaskClient client, string instanceId, CancellationToken cancellationToken) =>
        await client.GetInstanceAsync(instanceId, cancellationToken).ConfigureAwait(false) is { RuntimeStatus: OrchestrationRuntimeStatus.Pending or OrchestrationRuntimeStatus.Running };

    /// <summary>Whether the engine refused a start because the instance is pending or running (the exception type depends on the backend and transport).</summary>
    public static bool IsAlreadyRunning(Exception e)
    {
        for (var current = e; current is not null; current = current.InnerException)
        {
            if (current.GetType().Name == "OrchestrationAlreadyExistsException" ||
                current.Message.Contains("already exists", StringComparison.OrdinalIgnoreCase))
                return true;
        }
        return false;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Started fine-tune run {RunId} as {InstanceId} on {Dataset}")]
    private partial void LogStarted(string runId, string instanceId, string dataset);
}
