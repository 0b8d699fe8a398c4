using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Pipeline.Training;

namespace Wuerstchen.Workflows.Training;

/// <summary>The published version as the orchestration records it.</summary>
public sealed record PublishedVersion(string VersionId, string Name, string RawName, string DatasetVersion);

/// <summary>The fine-tune's activities: each reads the run's plan from the store and does one thing.</summary>
public sealed class FineTuneActivities(IBlobStore store, DatasetPreparer preparer, PriorFineTuner trainer, ValidationGridRenderer grids, ModelVersionPublisher publisher)
{
    public const string Prepare = "PrepareFineTuneData";
    public const string TrainChunk = "TrainFineTuneChunk";
    public const string RenderGrid = "RenderFineTuneGrid";
    public const string Publish = "PublishFineTunedModel";

    public async Task<PreparedSummary> PrepareAsync(string runId, CancellationToken cancellationToken) =>
        await preparer.PrepareAsync(await ReadRunAsync(runId, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);

    public async Task<ChunkOutcome> TrainChunkAsync(ChunkWork work, CancellationToken cancellationToken) =>
        await trainer.TrainChunkAsync(await ReadRunAsync(work.RunId, cancellationToken).ConfigureAwait(false), work.StartId, cancellationToken).ConfigureAwait(false);

    public async Task<string> RenderGridAsync(GridWork work, CancellationToken cancellationToken) =>
        await grids.RenderAsync(await ReadRunAsync(work.RunId, cancellationToken).ConfigureAwait(false), work.Step, cancellationToken).ConfigureAwait(false);

    public async Task<PublishedVersion> PublishAsync(string runId, CancellationToken cancellationToken)
    {
        var version = await publisher.PublishAsync(await ReadRunAsync(runId, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        return new PublishedVersion(version.VersionId, version.Name, version.RawName, version.DatasetVersion);
    }

    private Task<FineTuneRun> ReadRunAsync(string runId, CancellationToken cancellationToken) => FineTuneRuns.ReadAsync(store, runId, cancellationToken);
}
