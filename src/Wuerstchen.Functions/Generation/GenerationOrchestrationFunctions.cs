using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Workflows.Generation;

namespace Wuerstchen.Functions.Generation;

/// <summary>The Functions host's entry points for the GenerateImage orchestration and its stage activities.</summary>
public sealed class GenerationOrchestrationFunctions(StageActivities activities)
{
    [Function(GenerateImageOrchestration.Name)]
    public static Task<GenerationResult> GenerateImage([OrchestrationTrigger] TaskOrchestrationContext context) =>
        GenerateImageOrchestration.RunAsync(context, context.GetInput<GenerationJob>()!);

    [Function(StageActivities.StageC)]
    public Task<StageResult> StageC([ActivityTrigger] StageWork work, CancellationToken cancellationToken) =>
        activities.RunStageCAsync(work, cancellationToken);

    [Function(StageActivities.StageB)]
    public Task<StageResult> StageB([ActivityTrigger] StageWork work, CancellationToken cancellationToken) =>
        activities.RunStageBAsync(work, cancellationToken);

    [Function(StageActivities.StageA)]
    public Task<StageResult> StageA([ActivityTrigger] StageWork work, CancellationToken cancellationToken) =>
        activities.RunStageAAsync(work, cancellationToken);
}
