using Microsoft.DurableTask;
using Wuerstchen.Pipeline.Bulk;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Workflows.Generation;
using Wuerstchen.Workflows.Telemetry;
using Wuerstchen.Workflows.Webhooks;

namespace Wuerstchen.Workflows.Bulk;

/// <param name="Webhook">Where to POST the job's final status once it ends; null: nowhere.</param>
/// <param name="Trace">The intake's trace, shared by every batch of the job (null from older clients).</param>
public sealed record BulkJobInput(string JobId, RetrySettings Retry, int MaxParallelism, int BatchSize, WebhookTarget? Webhook = null,
    WorkflowTrace? Trace = null);

public sealed record BulkPlanSummary(string PlanBlob, int BatchCount);

/// <summary>What became of one batch: its images (item-major), or why it failed after its retries, or that it was cancelled.</summary>
public sealed record BatchOutcome(int Batch, IReadOnlyList<string>? Images, string? Error, bool Cancelled = false);

public sealed record BulkManifestInput(string JobId, IReadOnlyList<BatchOutcome> Outcomes);

public sealed record BulkCustomStatus(int CompletedBatches, int TotalBatches);

/// <summary>
/// One bulk job: plan the batches, run them as GenerateImage sub-orchestrations with bounded parallelism, write the
/// results manifest. A batch that fails after its retries is recorded as failed, a batch cancelled on its own
/// (<c>DELETE /api/generations/{batch id}</c>) as cancelled; the others go on.
/// </summary>
public static class BulkGenerateOrchestration
{
    public const string Name = "BulkGenerate";

    public static string InstanceIdFor(string jobId) => $"bulk-{jobId}";

    public static string BatchInstanceIdFor(string jobId, int batch) => $"bulk-{jobId}-b{batch:D5}";

    public static async Task<BulkSummary> RunAsync(TaskOrchestrationContext context, BulkJobInput input)
    {
        var progress = new BatchCount();
        if (input.Webhook is not { } webhook)
            return await RunBatchesAsync(context, input, progress);

        var startedAt = context.CurrentUtcDateTime;
        BulkSummary summary;
        try
        {
            summary = await RunBatchesAsync(context, input, progress);
        }
        catch (TaskFailedException e)
        {
            await WebhookCalls.NotifyAsync(context, WebhookActivities.SendBulk, webhook, new BulkWebhook(webhook, input.JobId, context.InstanceId,
                "Failed", context.CurrentUtcDateTime, null, Pipeline.ErrorText.WithoutPaths(e.FailureDetails.ErrorMessage), progress.Completed, progress.Total, startedAt));
            throw;
        }
        await WebhookCalls.NotifyAsync(context, WebhookActivities.SendBulk, webhook, new BulkWebhook(webhook, input.JobId, context.InstanceId,
            "Completed", context.CurrentUtcDateTime, summary, null, progress.Completed, progress.Total, startedAt));
        return summary;
    }

    /// <summary>The batches ended so far and in all, as the custom status reports them (for the webhook's body).</summary>
    private sealed class BatchCount
    {
        public int Completed { get; set; }
        public int Total { get; set; }
    }

    private static async Task<BulkSummary> RunBatchesAsync(TaskOrchestrationContext context, BulkJobInput input, BatchCount progress)
    {
        var plan = await context.CallActivityAsync<BulkPlanSummary>(BulkActivities.Plan, input.JobId, input.Retry.ToTaskOptions());
        progress.Total = plan.BatchCount;
        var outcomes = new List<BatchOutcome>(plan.BatchCount);
        var running = new List<Task<BatchOutcome>>();
        context.SetCustomStatus(new BulkCustomStatus(0, plan.BatchCount));

        for (int batch = 0; batch < plan.BatchCount; batch++)
        {
            if (running.Count >= Math.Max(1, input.MaxParallelism))
                await CollectOneAsync(context, running, outcomes, progress);
            running.Add(RunBatchAsync(context, input, plan.PlanBlob, batch));
        }
        while (running.Count > 0)
            await CollectOneAsync(context, running, outcomes, progress);

        return await context.CallActivityAsync<BulkSummary>(BulkActivities.WriteManifest, new BulkManifestInput(input.JobId, outcomes), input.Retry.ToTaskOptions());
    }

    private static async Task CollectOneAsync(TaskOrchestrationContext context, List<Task<BatchOutcome>> running, List<BatchOutcome> outcomes, BatchCount progress)
    {
        var finished = await Task.WhenAny(running);
        running.Remove(finished);
        outcomes.Add(await finished);
        progress.Completed = outcomes.Count;
        context.SetCustomStatus(new BulkCustomStatus(progress.Completed, progress.Total));
    }

    private static async Task<BatchOutcome> RunBatchAsync(TaskOrchestrationContext context, BulkJobInput input, string planBlob, int batch)
    {
        string instanceId = BatchInstanceIdFor(input.JobId, batch);
        var job = new GenerationJob(instanceId, new BatchRef(planBlob, batch), input.Retry, BulkJobId: input.JobId, Trace: input.Trace);
        try
        {
            var result = await context.CallSubOrchestratorAsync<GenerationResult?>(GenerateImageOrchestration.Name, job, new SubOrchestrationOptions { InstanceId = instanceId });
            // A batch terminated from outside completes without a result on some backends.
            return result?.Images is { } images
                ? new BatchOutcome(batch, images, null)
                : new BatchOutcome(batch, null, "The batch was terminated.", Cancelled: true);
        }
        catch (TaskFailedException e) when (Failures.IsCancellation(e.FailureDetails))
        {
            return new BatchOutcome(batch, null, "The batch was cancelled.", Cancelled: true);
        }
        catch (TaskFailedException e)
        {
            return new BatchOutcome(batch, null, e.FailureDetails.ErrorMessage);
        }
    }
}
