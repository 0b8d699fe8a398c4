using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Pipeline.Training;

namespace Wuerstchen.Workflows.Training;

/// <summary>The published version as the orchestration records it.</summary>
public sealed record PublishedVersion(string VersionId, string Revision, string Name, string RawName, string RevisionName, string RawRevisionName, string DatasetVersion);

/// <summary>The prepare activity's input: the run, and the start (lease) that prepares it.</summary>
public sealed record PrepareWork(string RunId, string StartId, string InstanceId);

/// <summary>The fine-tune's activities: each reads the run's plan from the store and does one thing.</summary>
public sealed class FineTuneActivities(IBlobStore store, DatasetPreparer preparer, PriorFineTuner trainer, ValidationGridRenderer grids, ModelVersionPublisher publisher)
{
    public const string Prepare = "PrepareFineTuneData";
    public const string TrainChunk = "TrainFineTuneChunk";
    public const string RenderGrid = "RenderFineTuneGrid";
    public const string Publish = "PublishFineTunedModel";

    /// <summary>
    /// Takes the run over for this start (its lease: an activity of an earlier, cancelled or terminated start stops at
    /// its next step), then prepares the dataset. The lease is written here, by the start the engine actually runs,
    /// never by a caller whose start was refused, so a duplicate or retried start cannot stop the run it duplicates.
    /// </summary>
    public async Task<PreparedSummary> PrepareAsync(PrepareWork work, CancellationToken cancellationToken)
    {
        await FineTuneRuns.WriteLeaseAsync(store, work.RunId, new RunLease(work.StartId, work.InstanceId, DateTimeOffset.UtcNow), cancellationToken).ConfigureAwait(false);
        var run = await ReadRunAsync(work.RunId, cancellationToken).ConfigureAwait(false);
        return await preparer.PrepareAsync(run, cancellationToken, work.StartId).ConfigureAwait(false);
    }

    public async Task<ChunkOutcome> TrainChunkAsync(ChunkWork work, CancellationToken cancellationToken) =>
        await trainer.TrainChunkAsync(await ReadRunAsync(work.RunId, cancellationToken).ConfigureAwait(false), work.StartId, cancellationToken).ConfigureAwait(false);

    public async Task<string> RenderGridAsync(GridWork work, CancellationToken cancellationToken) =>
        await grids.RenderAsync(await ReadRunAsync(work.RunId, cancellationToken).ConfigureAwait(false), work.Step, cancellationToken).ConfigureAwait(false);

    public async Task<PublishedVersion> PublishAsync(string runId, CancellationToken cancellationToken)
    {
        var version = await publisher.PublishAsync(await ReadRunAsync(runId, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        return new PublishedVersion(version.VersionId, version.Revision, version.Name, version.RawName, version.RevisionName, version.RawRevisionName, version.DatasetVersion);
    }

    private Task<FineTuneRun> ReadRunAsync(string runId, CancellationToken cancellationToken) => FineTuneRuns.ReadAsync(store, runId, cancellationToken);
}
