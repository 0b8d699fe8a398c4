using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Options;
using Wuerstchen.Pipeline.Bulk;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Models;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Workflows.Generation;

namespace Wuerstchen.Workflows.Bulk;

/// <summary>How a bulk job submitted over HTTP was taken.</summary>
public sealed record BulkStartOutcome(StartDisposition Disposition, string? JobId, IReadOnlyDictionary<string, string[]>? Errors = null);

/// <summary>Where a bulk job stands: its batches so far and, once done, its summary and manifest.</summary>
public sealed record BulkJobStatus(
    string JobId,
    string RuntimeStatus,
    int CompletedBatches,
    int TotalBatches,
    IReadOnlyList<string> Batches,
    BulkSummary? Summary,
    IReadOnlyList<BulkManifestEntry>? Manifest,
    string? Error,
    DateTimeOffset CreatedAt,
    DateTimeOffset LastUpdatedAt);

/// <summary>
/// Bulk jobs from a client that waits for an answer (the HTTP API): the same intake as the queue, but a job that can
/// never succeed is answered with its problems by field instead of being recorded as a rejected message.
/// </summary>
public sealed class BulkService(BulkJobIntake intake, IBlobStore store, ModelLocator models, IOptions<ModelOptions> modelOptions,
    IOptions<GenerationLimits> limits, IOptions<BulkOptions> bulkOptions)
{
    /// <summary>Starts a job from a body of <c>{jobId?, settings?, prompts}</c>; a job id is made when absent.</summary>
    /// <param name="apiBase">The API's root as the client reached it, for the links in the job's webhook.</param>
    public async Task<BulkStartOutcome> StartAsync(DurableTaskClient client, JsonObject body, CancellationToken cancellationToken, string? apiBase = null)
    {
        if (body.ContainsKey("promptsBlob"))
            return Invalid("promptsBlob", "Send the prompts in 'prompts'; a prompts blob is for queue messages.");
        if (!body.ContainsKey("jobId"))
            body["jobId"] = "web-" + Guid.NewGuid().ToString("N")[..20];
        string message = body.ToJsonString();
        var (job, rejection) = BulkJobParser.Parse(message, bulkOptions.Value.MaxPrompts);
        if (rejection is not null)
            return Invalid(FieldOf(rejection.Reason), rejection.Reason);

        var settingsErrors = BulkPlanner.SettingsErrors(job!, limits.Value, models.Problem, modelOptions.Value.Precision);
        if (settingsErrors.Count > 0)
            return new BulkStartOutcome(StartDisposition.Invalid, job!.JobId, settingsErrors.ToDictionary(e => "settings." + e.Key, e => e.Value));

        var outcome = await intake.AcceptAsync(client, message, "http-" + job!.JobId, cancellationToken, apiBase: apiBase).ConfigureAwait(false);
        return outcome.Disposition switch
        {
            IntakeDisposition.Started => new BulkStartOutcome(StartDisposition.Started, job.JobId),
            IntakeDisposition.AlreadyKnown => new BulkStartOutcome(StartDisposition.Existing, job.JobId),
            _ when outcome.Reason?.Contains("already used for a different job", StringComparison.Ordinal) == true =>
                new BulkStartOutcome(StartDisposition.Conflict, job.JobId, new Dictionary<string, string[]> { ["jobId"] = [outcome.Reason] }),
            _ => Invalid(FieldOf(outcome.Reason ?? ""), outcome.Reason ?? "The job was rejected."),
        };
    }

    public async Task<BulkJobStatus?> GetStatusAsync(DurableTaskClient client, string jobId, CancellationToken cancellationToken)
    {
        if (!GenerationService.IsWellFormedId(jobId))
            return null;
        var instance = await client.GetInstanceAsync(BulkGenerateOrchestration.InstanceIdFor(jobId), getInputsAndOutputs: true, cancellationToken).ConfigureAwait(false);
        if (instance?.Name != BulkGenerateOrchestration.Name)
            return null;
        var progress = instance.SerializedCustomStatus is { } custom ? JsonSerializer.Deserialize<BulkCustomStatus>(custom) : null;
        int total = progress?.TotalBatches ?? 0;
        BulkSummary? summary = instance.RuntimeStatus == OrchestrationRuntimeStatus.Completed ? instance.ReadOutputAs<BulkSummary>() : null;
        var manifest = summary is null ? null : await BulkManifestWriter.ReadAsync(store, jobId, cancellationToken).ConfigureAwait(false);
        return new BulkJobStatus(jobId, instance.RuntimeStatus.ToString(), progress?.CompletedBatches ?? 0, total,
            Enumerable.Range(0, total).Select(b => BulkGenerateOrchestration.BatchInstanceIdFor(jobId, b)).ToArray(),
            summary, manifest, Pipeline.ErrorText.WithoutPaths(instance.FailureDetails?.ErrorMessage), instance.CreatedAt, instance.LastUpdatedAt);
    }

    /// <summary>The manifest of a finished job; null while it has none.</summary>
    public async Task<IReadOnlyList<BulkManifestEntry>?> ManifestAsync(string jobId, CancellationToken cancellationToken)
    {
        if (!GenerationService.IsWellFormedId(jobId))
            return null;
        try
        {
            return await BulkManifestWriter.ReadAsync(store, jobId, cancellationToken).ConfigureAwait(false);
        }
        catch (BlobNotFoundException)
        {
            return null;
        }
    }

    private static BulkStartOutcome Invalid(string field, string message) =>
        new(StartDisposition.Invalid, null, new Dictionary<string, string[]> { [field] = [message] });

    /// <summary>The field a parser's reason names first ("prompts[2]: …" → prompts).</summary>
    private static string FieldOf(string reason)
    {
        foreach (string field in new[] { "jobId", "prompts", "settings" })
            if (reason.StartsWith(field, StringComparison.Ordinal) || reason.Contains($" {field} ", StringComparison.Ordinal))
                return field;
        return reason.Contains("work", StringComparison.OrdinalIgnoreCase) ? "prompts" : "body";
    }
}
