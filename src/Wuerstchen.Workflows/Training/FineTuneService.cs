using System.Text.Json;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wuerstchen.Pipeline;
using Wuerstchen.Pipeline.Models;
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
    FineTuneRun? Run,
    TrainingProgress? Progress = null,
    IReadOnlyList<LongCaption>? LongCaptions = null);

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
        // A fine-tuned base prior is pinned to its newest revision, so the run records the weights it starts from.
        var pinned = request?.BasePrior is { } basePrior ? request with { BasePrior = models.Pin(basePrior) } : request;
        var validated = FineTuneRequestValidator.Validate(pinned, training.Value, models.Problem, NewRunId);
        if (!validated.IsValid)
            return new StartOutcome(StartDisposition.Invalid, null, validated.Errors);
        var run = validated.Run!;
        if (request!.RunId is not null && await FineTuneRuns.TryReadAsync(store, run.RunId, cancellationToken).ConfigureAwait(false) is { } existing)
            run = KeepCreationChoices(existing, request, run);
        return await StartRunAsync(client, run, run.RunId, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// What a run fixed when it was created and the request leaves to defaults stays as it was, so the same request
    /// with more steps extends the run instead of conflicting with it: the warm-up and EMA interval scaled to its
    /// first step count, and the revision of a fine-tuned base prior.
    /// </summary>
    private static FineTuneRun KeepCreationChoices(FineTuneRun existing, FineTuneRequest request, FineTuneRun run)
    {
        var recipe = run.Recipe;
        if (request.WarmupSteps is null)
            recipe = recipe with { WarmupSteps = existing.Recipe.WarmupSteps };
        if (request.EmaUpdateEvery is null)
            recipe = recipe with { EmaUpdateEvery = existing.Recipe.EmaUpdateEvery };
        if (request.BasePrior is { } named && FineTunedModels.TryParse(named, out var asked) && asked.Revision is null &&
            FineTunedModels.TryParse(existing.Recipe.BasePrior, out var kept) && kept with { Revision = null } == asked)
            recipe = recipe with { BasePrior = existing.Recipe.BasePrior };
        return run with { Recipe = recipe };
    }

    /// <summary>
    /// Starts <paramref name="run"/> as instance <paramref name="instanceId"/> unless that instance is pending or
    /// running (checked first, and again by the engine through dedupe statuses, which closes the race between two
    /// starters); a run id already used for other training is a conflict. The encoder is checked, and a run is never
    /// asked for fewer steps than it has trained, before anything is stored. Nothing here takes the run's lease:
    /// the started orchestration does (<see cref="FineTuneActivities.PrepareAsync"/>), so a start the engine refuses
    /// — a second caller racing the first, or a client retrying after a timeout — leaves the running start alone.
    /// </summary>
    public async Task<StartOutcome> StartRunAsync(DurableTaskClient client, FineTuneRun run, string instanceId, CancellationToken cancellationToken)
    {
        if (await IsActiveAsync(client, instanceId, cancellationToken).ConfigureAwait(false))
            return new StartOutcome(StartDisposition.Existing, instanceId);
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        if (EffnetProblem(run.EffnetModel) is { } effnet)
            errors["effnetModel"] = [effnet];
        int trained = (await checkpoints.ListAsync(run.RunId, cancellationToken).ConfigureAwait(false)).Where(c => c.Complete).Select(c => c.Step).DefaultIfEmpty(0).Max();
        if (trained > run.Recipe.TotalSteps)
            errors["totalSteps"] = [$"Run '{run.RunId}' has already trained {trained} steps; ask for {trained} (which publishes it as it is) or more."];
        if (errors.Count > 0)
            return new StartOutcome(StartDisposition.Invalid, instanceId, errors);
        if (await FineTuneRuns.SaveAsync(store, run, cancellationToken).ConfigureAwait(false) == RunPlanOutcome.Conflict)
            return new StartOutcome(StartDisposition.Conflict, instanceId);

        string startId = Guid.NewGuid().ToString("N");
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

    /// <summary>Why the EfficientNet encoder cannot be used, in words for the person starting the run; null when it can.</summary>
    private string? EffnetProblem(string name)
    {
        if (models.TryResolve(name, out var searched) is not null)
            return null;
        string setting = $"{TrainingOptions.Section}:EffnetModel";
        if (searched.FirstOrDefault(Directory.Exists) is not null)
            return $"The EfficientNet encoder '{name}' ({setting}) is a folder without config.json; an encoder folder holds config.json and model.safetensors, " +
                   "which `wuerstchen models convert model_v2_stage_b.pt FOLDER --key effnet_state_dict` writes (docs/fine-tuning.md §1).";
        return $"The EfficientNet encoder '{name}' ({setting}) is not among the models. It is not part of the published repositories: convert it once with " +
               "`wuerstchen models convert model_v2_stage_b.pt effnet/ --key effnet_state_dict` into the model root (docs/fine-tuning.md §1).";
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
        TrainingProgress? live = null;
        if (runId is not null)
        {
            run = await FineTuneRuns.TryReadAsync(store, runId, cancellationToken).ConfigureAwait(false);
            checkpointList = await checkpoints.ListAsync(runId, cancellationToken).ConfigureAwait(false);
            var log = await LossLog.ReadAsync(store, runId, cancellationToken).ConfigureAwait(false);
            loss = log.Skip(Math.Max(0, log.Count - RecentLossPoints)).ToArray();
            prepared = await ReadPreparedAsync(runId, cancellationToken).ConfigureAwait(false);
            // The running activity's own report, when it belongs to this start (an earlier start's is stale).
            if (instance.RuntimeStatus == OrchestrationRuntimeStatus.Running && input is not null &&
                await TrainingProgress.ReadAsync(store, runId, cancellationToken).ConfigureAwait(false) is { } reported && reported.StartId == input.StartId)
                live = reported;
        }
        var latest = loss.LastOrDefault(p => p.Loss is not null);
        var training = live is { Phase: TrainingProgress.Training } ? live : null;
        // A running start reports its step itself (the loss log may still hold steps past the checkpoint it resumed
        // from); otherwise the newer of the last finished chunk and the loss log.
        var (step, lossValue, rate) = training is not null
            ? (training.Step, training.Loss, training.LearningRate)
            : instance.RuntimeStatus == OrchestrationRuntimeStatus.Running || latest is null || (custom?.Step ?? 0) >= latest.Step
                ? (custom?.Step ?? 0, custom?.Loss, custom?.LearningRate)
                : (latest.Step, latest.Loss, latest.LearningRate);
        // Where this start resumed from is known from its first chunk's report, before that chunk ends.
        bool firstChunk = progress is null;
        var skipped = (custom?.Skipped ?? progress?.Skipped ?? []).Concat(firstChunk ? training?.Skipped ?? [] : [])
            .GroupBy(s => s.Step).Select(g => g.First()).OrderByDescending(s => s.Step).ToArray();
        return new FineTuneStatus(
            id,
            runId,
            instance.RuntimeStatus.ToString(),
            custom?.Phase,
            step,
            run?.Recipe.TotalSteps ?? custom?.TotalSteps ?? 0,
            lossValue,
            rate,
            result?.LatestGrid ?? custom?.LatestGrid ?? progress?.LatestGrid,
            checkpointList,
            skipped,
            custom?.ResumedFrom ?? progress?.ResumedFrom ?? (firstChunk ? training?.ResumedFrom : null),
            loss,
            prepared?.Items.Count,
            prepared?.Problems ?? [],
            result,
            ErrorText.WithoutPaths(WorkflowFailures.Message(instance.FailureDetails)),
            instance.CreatedAt,
            instance.LastUpdatedAt,
            run,
            live,
            prepared?.LongCaptions ?? []);
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

    /// <summary>The published fine-tuned versions with their revisions, the most recently published first.</summary>
    public Task<IReadOnlyList<PublishedModel>> ListModelsAsync(CancellationToken cancellationToken) => versions.ListAsync(cancellationToken);

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
