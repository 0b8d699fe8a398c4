using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Storage;

namespace Wuerstchen.Workflows.Generation;

/// <summary>A re-decode whose Stage C latents are gone: nothing to decode from, and recomputing would defeat its purpose.</summary>
public sealed class StageCMissingException(string blob)
    : Exception($"The Stage C latents '{blob}' do not exist; generate the image again instead of re-decoding it.");

/// <summary>The three stage activities: load the batch from its plan blob, run the stage, publish progress.</summary>
public sealed class StageActivities(GenerationStages stages, BatchPlanStore plans, IBlobStore store, IOptions<WorkflowOptions> options, ILogger<StageActivities> logger)
{
    public const string StageC = "StageC";
    public const string StageB = "StageB";
    public const string StageA = "StageA";

    public async Task<StageResult> RunStageCAsync(StageWork work, CancellationToken cancellationToken)
    {
        var batch = await plans.ReadAsync(work.Batch, cancellationToken).ConfigureAwait(false);
        if (work.RequireStageC)
        {
            string blob = GenerationStages.StageCBlob(batch);
            if (!await store.ExistsAsync(blob, cancellationToken).ConfigureAwait(false))
                throw new StageCMissingException(blob);
            return new StageResult([blob], Reused: true);
        }
        await using var progress = Progress(work);
        return await stages.RunStageCAsync(batch, progress, cancellationToken).ConfigureAwait(false);
    }

    public async Task<StageResult> RunStageBAsync(StageWork work, CancellationToken cancellationToken)
    {
        var batch = await plans.ReadAsync(work.Batch, cancellationToken).ConfigureAwait(false);
        await using var progress = Progress(work);
        return await stages.RunStageBAsync(batch, progress, cancellationToken).ConfigureAwait(false);
    }

    public async Task<StageResult> RunStageAAsync(StageWork work, CancellationToken cancellationToken)
    {
        var batch = await plans.ReadAsync(work.Batch, cancellationToken).ConfigureAwait(false);
        await using var progress = Progress(work);
        return await stages.RunStageAAsync(batch, progress, cancellationToken).ConfigureAwait(false);
    }

    private ProgressPublisher Progress(StageWork work) => new(store, work.GenerationId, options.Value.ProgressInterval, logger);
}
