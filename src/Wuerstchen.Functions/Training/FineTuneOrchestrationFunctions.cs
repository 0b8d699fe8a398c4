using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Wuerstchen.Pipeline.Training;
using Wuerstchen.Workflows.Training;

namespace Wuerstchen.Functions.Training;

/// <summary>The Functions host's entry points for FineTuneStageC, its activities and the retraining timer.</summary>
public sealed class FineTuneOrchestrationFunctions(FineTuneActivities activities, FineTuneScheduler scheduler)
{
    [Function(FineTuneOrchestration.Name)]
    public static Task<FineTuneResult?> FineTuneStageC([OrchestrationTrigger] TaskOrchestrationContext context) =>
        FineTuneOrchestration.RunAsync(context, context.GetInput<FineTuneInput>()!);

    [Function(FineTuneActivities.Prepare)]
    public Task<PreparedSummary> Prepare([ActivityTrigger] PrepareWork work, CancellationToken cancellationToken) =>
        activities.PrepareAsync(work, cancellationToken);

    [Function(FineTuneActivities.TrainChunk)]
    public Task<ChunkOutcome> TrainChunk([ActivityTrigger] ChunkWork work, CancellationToken cancellationToken) =>
        activities.TrainChunkAsync(work, cancellationToken);

    [Function(FineTuneActivities.RenderGrid)]
    public Task<string> RenderGrid([ActivityTrigger] GridWork work, CancellationToken cancellationToken) =>
        activities.RenderGridAsync(work, cancellationToken);

    [Function(FineTuneActivities.Publish)]
    public Task<PublishedVersion> Publish([ActivityTrigger] string runId, CancellationToken cancellationToken) =>
        activities.PublishAsync(runId, cancellationToken);

    /// <summary>
    /// Retraining on new captions: on the schedule in <c>Wuerstchen:Training:Schedule</c> (the app setting
    /// <c>Wuerstchen__Training__Schedule</c>, six-field NCRONTAB, UTC) it starts a fine-tune of each scheduled dataset
    /// whose images or captions changed; see <see cref="FineTuneScheduler"/>.
    /// </summary>
    [Function("RetrainOnNewCaptions")]
    public Task Retrain(
        [TimerTrigger("%Wuerstchen:Training:Schedule%")] TimerInfo timer,
        [DurableClient] DurableTaskClient client,
        CancellationToken cancellationToken) =>
        scheduler.RunAsync(client, DateTimeOffset.UtcNow, cancellationToken);
}
