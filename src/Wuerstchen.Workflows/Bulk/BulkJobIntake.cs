using System.Text.Json;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wuerstchen.Pipeline.Bulk;
using Wuerstchen.Pipeline.Diagnostics;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Models;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Workflows.Telemetry;

namespace Wuerstchen.Workflows.Bulk;

public enum IntakeDisposition
{
    Started,
    AlreadyKnown,
    Rejected,
}

public sealed record IntakeOutcome(IntakeDisposition Disposition, string? JobId, string? Reason = null);

/// <summary>
/// Takes a bulk job message off the queue. A message that can never succeed is recorded with its reason and consumed
/// (never retried); a job already started is not started again; anything transient throws, so the host retries the
/// message and, after its dequeue limit, moves it to the poison queue.
/// </summary>
public sealed partial class BulkJobIntake(IBlobStore store, ModelLocator models, IOptions<ModelOptions> modelOptions, IOptions<GenerationLimits> limits,
    IOptions<BulkOptions> bulkOptions, IOptions<WorkflowOptions> workflowOptions, IOptions<Webhooks.WebhookOptions> webhookOptions,
    ILogger<BulkJobIntake> logger)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <param name="insertedAt">When the message was put on the queue (the queue trigger's InsertionTime), for the queue-wait metric.</param>
    /// <param name="apiBase">The API's root as an HTTP client reached it, for the links in the job's webhook; null for a queue message (relative links).</param>
    public async Task<IntakeOutcome> AcceptAsync(DurableTaskClient client, string message, string messageId, CancellationToken cancellationToken,
        DateTimeOffset? insertedAt = null, string? apiBase = null)
    {
        if (insertedAt is { } inserted)
            WuerstchenTelemetry.QueueWait.Record(Math.Max(0, (DateTimeOffset.UtcNow - inserted).TotalSeconds), new KeyValuePair<string, object?>(WuerstchenTelemetry.Tags.Kind, "queue"));
        int maxPrompts = bulkOptions.Value.MaxPrompts;
        var (job, rejection) = BulkJobParser.Parse(message, maxPrompts);
        if (job is not null)
        {
            var settingsErrors = BulkPlanner.SettingsErrors(job, limits.Value, models.Problem, modelOptions.Value.Precision);
            if (job.Settings.Webhook is not null)
                rejection = new BulkJobRejection("settings: webhook: a bulk job's webhook goes at the top level of the job (\"webhook\"), not in its settings.");
            else if (job.Webhook is { } webhook && webhookOptions.Value.Problem(webhook) is { } webhookProblem)
                rejection = new BulkJobRejection($"webhook: {webhookProblem}");
            else if (settingsErrors.Count > 0)
                rejection = new BulkJobRejection("settings: " + string.Join(" ", settingsErrors.Select(e => $"{e.Key}: {string.Join(" ", e.Value)}")));
            else if (job.PromptsBlob is { } blob && !await PromptsBlobExistsAsync(blob, cancellationToken).ConfigureAwait(false))
                rejection = new BulkJobRejection($"promptsBlob '{blob}' does not exist (or is not a valid blob name).");
            else if (job.PromptsBlob is { } file)
                rejection = await PromptsBlobProblemAsync(file, maxPrompts, cancellationToken).ConfigureAwait(false);
            else if (BulkPlanner.WorkProblem(BulkPlanner.Plan(job, job.Prompts!.Select(p => ((BulkPrompt?)p, (string?)null)).ToArray(), limits.Value,
                         models.Problem, modelOptions.Value.Precision, bulkOptions.Value.EffectiveBatchSize(modelOptions.Value)), bulkOptions.Value.MaxWorkPerJob) is { } overBudget)
                rejection = new BulkJobRejection(overBudget);
        }
        if (rejection is not null)
            return await RejectAsync(message, messageId, job?.JobId, rejection.Reason, cancellationToken).ConfigureAwait(false);

        string instanceId = BulkGenerateOrchestration.InstanceIdFor(job!.JobId);
        if (await client.GetInstanceAsync(instanceId, cancellationToken).ConfigureAwait(false) is not null)
        {
            LogAlreadyKnown(job.JobId);
            return new IntakeOutcome(IntakeDisposition.AlreadyKnown, job.JobId);
        }

        byte[] request = JsonSerializer.SerializeToUtf8Bytes(job, Json);
        var existing = await store.GetInfoAsync(BulkBlobs.Request(job.JobId), cancellationToken).ConfigureAwait(false);
        if (existing is not null)
        {
            if (!await SameContentAsync(BulkBlobs.Request(job.JobId), request, cancellationToken).ConfigureAwait(false))
                return await RejectAsync(message, messageId, job.JobId, $"jobId '{job.JobId}' was already used for a different job.", cancellationToken).ConfigureAwait(false);
        }
        else
        {
            using var content = new MemoryStream(request);
            await store.WriteAsync(BulkBlobs.Request(job.JobId), content, new BlobWriteOptions { ContentType = "application/json" }, cancellationToken).ConfigureAwait(false);
        }

        var options = bulkOptions.Value;
        var webhookTarget = job.Webhook is { } url ? new Webhooks.WebhookTarget(url, apiBase, webhookOptions.Value.Retry) : null;
        // A bulk job's trace id derives from its job id, so its planning, every batch's stages and its manifest join one
        // trace; the queue message's span, if any, is linked.
        var caller = System.Diagnostics.Activity.Current;
        using var span = WuerstchenTelemetry.StartWorkflowSpan("BulkGenerate submit", null, job.JobId, System.Diagnostics.ActivityKind.Producer);
        if (caller is not null)
            span?.AddLink(new System.Diagnostics.ActivityLink(caller.Context));
        span?.SetTag(WuerstchenTelemetry.Tags.BulkJobId, job.JobId);
        span?.SetTag(WuerstchenTelemetry.Tags.PriorModel, job.Settings?.PriorModel);
        span?.SetTag(WuerstchenTelemetry.Tags.DecoderModel, job.Settings?.DecoderModel);
        var input = new BulkJobInput(job.JobId, workflowOptions.Value.Retry, options.MaxParallelism, options.EffectiveBatchSize(modelOptions.Value),
            webhookTarget, WorkflowTrace.From(span, job.JobId));
        await client.ScheduleNewOrchestrationInstanceAsync(BulkGenerateOrchestration.Name, input, new StartOrchestrationOptions(instanceId), cancellationToken).ConfigureAwait(false);
        LogStarted(job.JobId, instanceId);
        return new IntakeOutcome(IntakeDisposition.Started, job.JobId);
    }

    private async Task<IntakeOutcome> RejectAsync(string message, string messageId, string? jobId, string reason, CancellationToken cancellationToken)
    {
        var record = new { messageId, jobId, reason, receivedAt = DateTimeOffset.UtcNow, message };
        using var content = new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(record, Json));
        await store.WriteAsync(BulkBlobs.Rejected(SafeName(messageId)), content, new BlobWriteOptions { ContentType = "application/json" }, cancellationToken).ConfigureAwait(false);
        LogRejected(messageId, reason);
        return new IntakeOutcome(IntakeDisposition.Rejected, jobId, reason);
    }

    private async Task<bool> PromptsBlobExistsAsync(string blob, CancellationToken cancellationToken)
    {
        try
        {
            return await store.ExistsAsync(blob, cancellationToken).ConfigureAwait(false);
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    /// <summary>A prompt file that holds no prompts or more than the limit can never succeed: rejected here, not in planning.</summary>
    private async Task<BulkJobRejection?> PromptsBlobProblemAsync(string blob, int maxPrompts, CancellationToken cancellationToken)
    {
        await using var stream = await store.OpenReadAsync(blob, cancellationToken).ConfigureAwait(false);
        int count = await BulkPlanner.CountPromptLinesAsync(stream, maxPrompts, cancellationToken).ConfigureAwait(false);
        if (count == 0)
            return new BulkJobRejection($"promptsBlob '{blob}' holds no prompts.");
        return count > maxPrompts ? new BulkJobRejection($"promptsBlob '{blob}' holds more than {maxPrompts} prompts (Wuerstchen:Bulk:MaxPrompts).") : null;
    }

    private async Task<bool> SameContentAsync(string blob, byte[] expected, CancellationToken cancellationToken)
    {
        await using var stream = await store.OpenReadAsync(blob, cancellationToken).ConfigureAwait(false);
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
        return buffer.ToArray().AsSpan().SequenceEqual(expected);
    }

    private static string SafeName(string messageId) =>
        new(messageId.Select(c => char.IsAsciiLetterOrDigit(c) || c == '-' ? c : '_').Take(100).ToArray());

    [LoggerMessage(Level = LogLevel.Information, Message = "Started bulk job {JobId} as {InstanceId}")]
    private partial void LogStarted(string jobId, string instanceId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Bulk job {JobId} is already known; the message is not started again")]
    private partial void LogAlreadyKnown(string jobId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rejected bulk message {MessageId}: {Reason}")]
    private partial void LogRejected(string messageId, string reason);
}
