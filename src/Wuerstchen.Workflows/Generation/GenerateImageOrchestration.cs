using Microsoft.DurableTask;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Workflows.Telemetry;
using Wuerstchen.Workflows.Webhooks;

namespace Wuerstchen.Workflows.Generation;

/// <summary>Input of <see cref="GenerateImageOrchestration"/>: references only, never tensors.</summary>
/// <param name="RequireStageC">A re-decode: the Stage C blob must already exist; it is never recomputed.</param>
/// <param name="BulkJobId">The bulk job this is a batch of; null for a generation of its own.</param>
/// <param name="Webhook">Where to POST the final status once the generation ends (completed or failed); null: nowhere.</param>
/// <param name="Trace">The submitter's trace and submission time, passed on to every stage (null from older clients).</param>
public sealed record GenerationJob(string GenerationId, BatchRef Batch, RetrySettings Retry, bool RequireStageC = false, string? BulkJobId = null,
    WebhookTarget? Webhook = null, WorkflowTrace? Trace = null);

/// <summary>What an activity works on: the generation (for progress) and its batch, and the trace it belongs to.</summary>
public sealed record StageWork(string GenerationId, BatchRef Batch, bool RequireStageC = false, WorkflowTrace? Trace = null);

public sealed record GenerationResult(string GenerationId, IReadOnlyList<string> Images, string StageCBlob, string StageBBlob, bool StageCReused);

/// <summary>The orchestration's custom status: the stage it waits on.</summary>
public sealed record GenerationCustomStatus(string Stage);

/// <summary>
/// Text → Stage C latents → Stage B latents → PNGs, one activity per stage, each retried with backoff; then, when the
/// request named one, the webhook with the final status (completed or failed), delivered by its own activity.
/// </summary>
public static class GenerateImageOrchestration
{
    public const string Name = "GenerateImage";

    public static async Task<GenerationResult> RunAsync(TaskOrchestrationContext context, GenerationJob job)
    {
        if (job.Webhook is not { } webhook)
            return await RunStagesAsync(context, job);

        var startedAt = context.CurrentUtcDateTime;
        GenerationResult result;
        try
        {
            result = await RunStagesAsync(context, job);
        }
        catch (TaskFailedException e)
        {
            await WebhookCalls.NotifyAsync(context, WebhookActivities.SendGeneration, webhook, new GenerationWebhook(webhook, job.GenerationId, job.Batch,
                "Failed", startedAt, context.CurrentUtcDateTime, null, Pipeline.ErrorText.WithoutPaths(e.FailureDetails.ErrorMessage)));
            throw;
        }
        await WebhookCalls.NotifyAsync(context, WebhookActivities.SendGeneration, webhook, new GenerationWebhook(webhook, job.GenerationId, job.Batch,
            "Completed", startedAt, context.CurrentUtcDateTime, result, null));
        return result;
    }

    private static async Task<GenerationResult> RunStagesAsync(TaskOrchestrationContext context, GenerationJob job)
    {
        var options = job.Retry.ToTaskOptions();
        var work = new StageWork(job.GenerationId, job.Batch, job.RequireStageC, job.Trace);

        context.SetCustomStatus(new GenerationCustomStatus(StageActivities.StageC));
        var stageC = await context.CallActivityAsync<StageResult>(StageActivities.StageC, work, options);
        context.SetCustomStatus(new GenerationCustomStatus(StageActivities.StageB));
        var stageB = await context.CallActivityAsync<StageResult>(StageActivities.StageB, work, options);
        context.SetCustomStatus(new GenerationCustomStatus(StageActivities.StageA));
        var stageA = await context.CallActivityAsync<StageResult>(StageActivities.StageA, work, options);
        context.SetCustomStatus(new GenerationCustomStatus("Completed"));
        return new GenerationResult(job.GenerationId, stageA.Blobs, stageC.Blobs[0], stageB.Blobs[0], stageC.Reused);
    }
}
