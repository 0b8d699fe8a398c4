using Wuerstchen.Pipeline.Storage;

namespace Wuerstchen.Pipeline.Training;

public enum RunPlanOutcome
{
    /// <summary>A new plan was written.</summary>
    Created,

    /// <summary>The run exists with the same data, encoder and recipe: it resumes (its step count and chunk size may change).</summary>
    Resumed,

    /// <summary>The run id is taken by a run with other data or another recipe.</summary>
    Conflict,
}

/// <summary>
/// The start of a run that may train it. Each start writes a new one; the training loop checks it before every step
/// and before writing a checkpoint, and stops when it is gone (cancelled) or belongs to a later start, so an activity
/// left running by a terminated or replaced orchestration never trains beside its successor.
/// </summary>
public sealed record RunLease(string StartId, string InstanceId, DateTimeOffset StartedAt);

/// <summary>Run plans and leases in the store (<c>training/runs/{run}/run.json</c>, <c>lease.json</c>).</summary>
public static class FineTuneRuns
{
    public static Task WriteLeaseAsync(IBlobStore store, string runId, RunLease lease, CancellationToken cancellationToken) =>
        BlobJson.WriteAsync(store, TrainingBlobs.Lease(runId), lease, cancellationToken);

    public static Task<RunLease?> ReadLeaseAsync(IBlobStore store, string runId, CancellationToken cancellationToken) =>
        BlobJson.TryReadAsync<RunLease>(store, TrainingBlobs.Lease(runId), cancellationToken);

    /// <summary>Cancels whichever start holds the run; false when none did.</summary>
    public static Task<bool> ReleaseLeaseAsync(IBlobStore store, string runId, CancellationToken cancellationToken) =>
        store.DeleteAsync(TrainingBlobs.Lease(runId), cancellationToken);

    public static Task<FineTuneRun> ReadAsync(IBlobStore store, string runId, CancellationToken cancellationToken) =>
        BlobJson.ReadAsync<FineTuneRun>(store, TrainingBlobs.Run(runId), cancellationToken);

    public static Task<FineTuneRun?> TryReadAsync(IBlobStore store, string runId, CancellationToken cancellationToken) =>
        BlobJson.TryReadAsync<FineTuneRun>(store, TrainingBlobs.Run(runId), cancellationToken);

    /// <summary>Stores the plan of a new run, or checks that an existing run with this id trains the same thing.</summary>
    public static async Task<RunPlanOutcome> SaveAsync(IBlobStore store, FineTuneRun run, CancellationToken cancellationToken)
    {
        for (int attempt = 0; attempt < 2; attempt++)
        {
            var existing = await TryReadAsync(store, run.RunId, cancellationToken).ConfigureAwait(false);
            if (existing is null)
            {
                try
                {
                    await BlobJson.WriteAsync(store, TrainingBlobs.Run(run.RunId), run, cancellationToken, overwrite: false).ConfigureAwait(false);
                    return RunPlanOutcome.Created;
                }
                catch (BlobAlreadyExistsException)
                {
                    continue; // a concurrent start wrote it first; compare with theirs
                }
            }
            // Until its first checkpoint a run has trained nothing with its encoder, so it may change it (say, when
            // the first start named an encoder that was missing); after that, the encoder is part of what it trains.
            bool encoderMayChange = existing.EffnetModel != run.EffnetModel && !await HasCheckpointAsync(store, run.RunId, cancellationToken).ConfigureAwait(false);
            if (!SameTraining(existing, encoderMayChange ? run with { EffnetModel = existing.EffnetModel } : run))
                return RunPlanOutcome.Conflict;
            if (TrainingHashes.OfJson(existing) != TrainingHashes.OfJson(run))
                await BlobJson.WriteAsync(store, TrainingBlobs.Run(run.RunId), run, cancellationToken).ConfigureAwait(false);
            return RunPlanOutcome.Resumed;
        }
        return RunPlanOutcome.Conflict;
    }

    private static async Task<bool> HasCheckpointAsync(IBlobStore store, string runId, CancellationToken cancellationToken)
    {
        await foreach (var _ in store.ListAsync(TrainingBlobs.CheckpointsPrefix(runId), cancellationToken).ConfigureAwait(false))
            return true;
        return false;
    }

    /// <summary>Whether two plans train the same weights (the step count, chunk size and validation settings may differ).</summary>
    public static bool SameTraining(FineTuneRun a, FineTuneRun b) =>
        a.RunId == b.RunId && a.DatasetKey == b.DatasetKey && a.EffnetModel == b.EffnetModel && a.Recipe.Hash() == b.Recipe.Hash()
        && TrainingHashes.OfJson(a.Dataset) == TrainingHashes.OfJson(b.Dataset);
}
