using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wuerstchen.Pipeline.Bulk;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Workflows.Bulk;
using Wuerstchen.Workflows.Generation;

namespace Wuerstchen.Workflows.Retention;

/// <summary>What one purge did.</summary>
public sealed record RetentionReport(int InstancesPurged, int BlobsDeleted, int LatentsKeptInUse);

/// <summary>
/// Purges generations and bulk jobs that finished more than <see cref="RetentionOptions.Period"/> ago: first their
/// intermediate blobs (the Stage C and Stage B latents their plans name, the plan and progress blobs; images only when
/// <see cref="RetentionOptions.PurgeImages"/> says so), then their Durable history, so a purge cut short is simply
/// done again by the next run. Latents are content-addressed and may be shared: one that a kept (running or recent)
/// generation's plan also names is kept. Fine-tune runs, checkpoints and model versions are never touched.
/// </summary>
public sealed partial class RetentionPurger(IBlobStore store, BatchPlanStore plans, IOptions<RetentionOptions> options, ILogger<RetentionPurger> logger)
{
    private const string GenerationPrefix = "gen-";
    private const string BulkPrefix = "bulk-";

    private static readonly OrchestrationRuntimeStatus[] Finished =
        [OrchestrationRuntimeStatus.Completed, OrchestrationRuntimeStatus.Failed, OrchestrationRuntimeStatus.Terminated];

    public async Task<RetentionReport> PurgeAsync(DurableTaskClient client, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        DateTimeOffset cutoff = now - settings.Period;
        var expired = new List<(string Id, string Name)>();
        var kept = new List<(string Id, string Name)>();
        await foreach (var instance in client.GetAllInstancesAsync(new OrchestrationQuery { FetchInputsAndOutputs = false }).WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            if (!instance.InstanceId.StartsWith(GenerationPrefix, StringComparison.Ordinal) && !instance.InstanceId.StartsWith(BulkPrefix, StringComparison.Ordinal))
                continue;
            if (Finished.Contains(instance.RuntimeStatus) && instance.LastUpdatedAt < cutoff)
                expired.Add((instance.InstanceId, instance.Name));
            else
                kept.Add((instance.InstanceId, instance.Name));
        }

        var inUse = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (id, name) in kept)
            foreach (var batch in await BatchesOfAsync(id, name, cancellationToken).ConfigureAwait(false))
                inUse.UnionWith([GenerationStages.StageCBlob(batch), GenerationStages.StageBBlob(batch)]);

        int deleted = 0, keptInUse = 0, purged = 0;
        foreach (var (id, name) in expired)
        {
            var batches = await BatchesOfAsync(id, name, cancellationToken).ConfigureAwait(false);
            var blobs = new List<string>();
            if (id.StartsWith(GenerationPrefix, StringComparison.Ordinal))
                blobs.AddRange(GenerationGallery.BlobsOf(id, await store.GetInfoAsync(GenerationService.PlanBlobFor(id), cancellationToken).ConfigureAwait(false), batches.FirstOrDefault()));
            foreach (var batch in batches)
            {
                foreach (string latents in new[] { GenerationStages.StageCBlob(batch), GenerationStages.StageBBlob(batch) })
                {
                    if (inUse.Contains(latents))
                        keptInUse++;
                    else
                        blobs.Add(latents);
                }
                if (settings.PurgeImages)
                    blobs.AddRange(Enumerable.Range(0, batch.Items.Count).SelectMany(item =>
                        Enumerable.Range(0, batch.Settings.ImagesPerPrompt).Select(n => GenerationStages.ImageBlob(batch, item, n))));
            }
            blobs.AddRange(OwnBlobs(id, name, settings.PurgeImages));
            foreach (string blob in blobs.Distinct(StringComparer.Ordinal))
            {
                if (await store.DeleteAsync(blob, cancellationToken).ConfigureAwait(false))
                    deleted++;
            }
            await client.PurgeInstanceAsync(id, cancellationToken).ConfigureAwait(false);
            purged++;
        }
        LogPurged(purged, deleted, keptInUse, cutoff);
        return new RetentionReport(purged, deleted, keptInUse);
    }

    /// <summary>The batches an instance ran: a generation's own plan, one batch of a bulk plan, or all of a bulk job's.</summary>
    private async Task<IReadOnlyList<GenerationBatch>> BatchesOfAsync(string instanceId, string name, CancellationToken cancellationToken)
    {
        try
        {
            if (instanceId.StartsWith(GenerationPrefix, StringComparison.Ordinal))
                return await plans.ReadAllAsync(GenerationService.PlanBlobFor(instanceId), cancellationToken).ConfigureAwait(false);
            if (BulkBatch(instanceId, name) is var (jobId, index))
                return [await plans.ReadAsync(new BatchRef(BulkBlobs.Plan(jobId), index), cancellationToken).ConfigureAwait(false)];
            return await plans.ReadAllAsync(BulkBlobs.Plan(instanceId[BulkPrefix.Length..]), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is BlobNotFoundException or ArgumentException or ArgumentOutOfRangeException)
        {
            // Already purged (a run cut short), never planned, or not an id this app names blobs after.
            return [];
        }
    }

    /// <summary>A bulk job's batch (a GenerateImage instance <c>bulk-{job}-b{n:D5}</c>): its job and index.</summary>
    private static (string JobId, int Index)? BulkBatch(string instanceId, string name)
    {
        int marker = instanceId.LastIndexOf("-b", StringComparison.Ordinal);
        if (name != GenerateImageOrchestration.Name || !instanceId.StartsWith(BulkPrefix, StringComparison.Ordinal) || marker <= BulkPrefix.Length
            || !int.TryParse(instanceId.AsSpan(marker + 2), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int index))
            return null;
        return (instanceId[BulkPrefix.Length..marker], index);
    }

    /// <summary>The blobs an instance owns by name: a generation's plan, progress and cancel marker; a bulk job's request, plan and entries (and manifest, with its images).</summary>
    private static IEnumerable<string> OwnBlobs(string instanceId, string name, bool withImages)
    {
        if (instanceId.StartsWith(GenerationPrefix, StringComparison.Ordinal))
            return [GenerationService.PlanBlobFor(instanceId), ProgressPublisher.BlobNameFor(instanceId), GenerationCancellation.MarkerBlobFor(instanceId)];
        // A batch's cancel marker goes with it: a job started again under the same id must not find its batches cancelled.
        if (BulkBatch(instanceId, name) is not null)
            return [ProgressPublisher.BlobNameFor(instanceId), GenerationCancellation.MarkerBlobFor(instanceId)];
        string job = instanceId[BulkPrefix.Length..];
        string[] own = [BulkBlobs.Request(job), BulkBlobs.Plan(job), BulkBlobs.Entries(job)];
        return withImages ? [.. own, BulkBlobs.Manifest(job), BulkBlobs.Summary(job)] : own;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Retention: purged {Instances} finished instances and {Blobs} blobs before {Cutoff}; {KeptInUse} latents kept for work still held")]
    private partial void LogPurged(int instances, int blobs, int keptInUse, DateTimeOffset cutoff);
}
