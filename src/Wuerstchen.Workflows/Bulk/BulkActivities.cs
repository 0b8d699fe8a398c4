using System.Text.Json;
using Microsoft.Extensions.Options;
using Wuerstchen.Pipeline;
using Wuerstchen.Pipeline.Bulk;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Models;
using Wuerstchen.Pipeline.Storage;

namespace Wuerstchen.Workflows.Bulk;

/// <summary>The bulk job's planning and manifest activities.</summary>
public sealed class BulkActivities(IBlobStore store, BatchPlanStore plans, ModelLocator models, IOptions<ModelOptions> modelOptions,
    IOptions<GenerationLimits> limits, IOptions<BulkOptions> bulkOptions)
{
    public const string Plan = "PlanBulkJob";
    public const string WriteManifest = "WriteBulkManifest";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private sealed record PlanEntries(IReadOnlyList<BulkEntry> Entries, IReadOnlyList<IReadOnlyList<int>> EntriesOfBatch, int ImagesPerPrompt);

    /// <summary>Reads the job's prompts, validates each, groups them into batches and stores the plan; returns its size.</summary>
    public async Task<BulkPlanSummary> PlanAsync(string jobId, CancellationToken cancellationToken)
    {
        BulkJob job;
        await using (var request = await store.OpenReadAsync(BulkBlobs.Request(jobId), cancellationToken).ConfigureAwait(false))
            job = await JsonSerializer.DeserializeAsync<BulkJob>(request, Json, cancellationToken).ConfigureAwait(false)
                  ?? throw new InvalidDataException($"The request blob of job '{jobId}' holds JSON null.");

        IReadOnlyList<(BulkPrompt?, string?)> prompts;
        if (job.Prompts is { } inline)
        {
            prompts = inline.Select(p => ((BulkPrompt?)p, (string?)null)).ToArray();
        }
        else
        {
            try
            {
                await using var file = await store.OpenReadAsync(job.PromptsBlob!, cancellationToken).ConfigureAwait(false);
                prompts = await BulkPlanner.ReadJsonLinesAsync(file, bulkOptions.Value.MaxPrompts, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is InvalidDataException or BlobNotFoundException)
            {
                // The file changed (or went) after the intake checked it: the job is rejected whole, in its manifest.
                prompts = [(null, $"The job was not run: {e.Message}")];
            }
        }

        // A fine-tuned prior is pinned to its newest revision now, so every batch of the job uses the same weights.
        if (job.Settings.PriorModel is { } prior)
            job = job with { Settings = job.Settings with { PriorModel = models.Pin(prior) } };
        var plan = BulkPlanner.Plan(job, prompts, limits.Value, models.Problem, modelOptions.Value.Precision,
            bulkOptions.Value.EffectiveBatchSize(modelOptions.Value));
        if (BulkPlanner.WorkProblem(plan, bulkOptions.Value.MaxWorkPerJob) is { } overBudget)
            plan = BulkPlanner.RejectWhole(plan, overBudget);
        await plans.WriteAsync(BulkBlobs.Plan(jobId), plan.Batches, cancellationToken: cancellationToken).ConfigureAwait(false);
        int imagesPerPrompt = plan.Batches.FirstOrDefault()?.Settings.ImagesPerPrompt ?? 1;
        using var entries = new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(new PlanEntries(plan.Entries, plan.EntriesOfBatch, imagesPerPrompt), Json));
        await store.WriteAsync(BulkBlobs.Entries(jobId), entries, new BlobWriteOptions { ContentType = "application/json" }, cancellationToken).ConfigureAwait(false);
        return new BulkPlanSummary(BulkBlobs.Plan(jobId), plan.Batches.Count);
    }

    /// <summary>Joins the plan's entries with the batches' outcomes into the manifest, one line per prompt.</summary>
    public async Task<BulkSummary> WriteManifestAsync(BulkManifestInput input, CancellationToken cancellationToken)
    {
        PlanEntries planned;
        await using (var stream = await store.OpenReadAsync(BulkBlobs.Entries(input.JobId), cancellationToken).ConfigureAwait(false))
            planned = await JsonSerializer.DeserializeAsync<PlanEntries>(stream, Json, cancellationToken).ConfigureAwait(false)
                      ?? throw new InvalidDataException($"The entries blob of job '{input.JobId}' holds JSON null.");

        var images = new Dictionary<int, IReadOnlyList<string>>();
        var errors = new Dictionary<int, string>();
        var cancelled = new HashSet<int>();
        foreach (var outcome in input.Outcomes)
        {
            var entries = planned.EntriesOfBatch[outcome.Batch];
            for (int item = 0; item < entries.Count; item++)
            {
                if (outcome.Images is { } batchImages)
                    images[entries[item]] = batchImages.Skip(item * planned.ImagesPerPrompt).Take(planned.ImagesPerPrompt).ToArray();
                else
                    errors[entries[item]] = ErrorText.WithoutPaths(outcome.Error) ?? "The batch failed.";
                if (outcome.Cancelled)
                    cancelled.Add(entries[item]);
            }
        }

        string Status(BulkEntry e) =>
            e.Error is not null ? BulkManifestWriter.Rejected
            : images.ContainsKey(e.Index) ? BulkManifestWriter.Succeeded
            : cancelled.Contains(e.Index) ? BulkManifestWriter.Cancelled
            : BulkManifestWriter.Failed;
        var manifest = planned.Entries.Select(e => new BulkManifestEntry(e.Index, e.Prompt, e.NegativePrompt, e.Seed, e.Width, e.Height,
            Status(e),
            images.GetValueOrDefault(e.Index) ?? [],
            e.Error ?? errors.GetValueOrDefault(e.Index) ?? (images.ContainsKey(e.Index) ? null : "The batch of this prompt never reported."))).ToArray();
        return await BulkManifestWriter.WriteAsync(store, input.JobId, manifest, cancellationToken).ConfigureAwait(false);
    }
}
