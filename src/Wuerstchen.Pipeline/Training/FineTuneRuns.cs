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

/// <summary>Run plans in the store (<c>training/runs/{run}/run.json</c>).</summary>
public static class FineTuneRuns
{
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
            if (!SameTraining(existing, run))
                return RunPlanOutcome.Conflict;
            if (TrainingHashes.OfJson(existing) != TrainingHashes.OfJson(run))
                await BlobJson.WriteAsync(store, TrainingBlobs.Run(run.RunId), run, cancellationToken).ConfigureAwait(false);
            return RunPlanOutcome.Resumed;
        }
        return RunPlanOutcome.Conflict;
    }

    /// <summary>Whether two plans train the same weights (the step count, chunk size and validation settings may differ).</summary>
    public static bool SameTraining(FineTuneRun a, FineTuneRun b) =>
        a.RunId == b.RunId && a.DatasetKey == b.DatasetKey && a.EffnetModel == b.EffnetModel && a.Recipe.Hash() == b.Recipe.Hash()
        && TrainingHashes.OfJson(a.Dataset) == TrainingHashes.OfJson(b.Dataset);
}
