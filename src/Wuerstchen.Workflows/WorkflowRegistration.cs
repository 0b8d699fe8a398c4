using Microsoft.DurableTask;
using Microsoft.Extensions.DependencyInjection;
using Wuerstchen.Pipeline.Bulk;
using Wuerstchen.Workflows.Bulk;
using Wuerstchen.Workflows.Generation;
using Wuerstchen.Workflows.Training;

namespace Wuerstchen.Workflows;

/// <summary>Registers the orchestrations and activities on a Durable Task worker outside the Functions host (CLI, tests).</summary>
public static class WorkflowRegistration
{
    public static DurableTaskRegistry AddWuerstchenWorkflows(this DurableTaskRegistry registry, IServiceProvider services)
    {
        registry.AddOrchestratorFunc<GenerationJob, GenerationResult>(GenerateImageOrchestration.Name, (context, job) => GenerateImageOrchestration.RunAsync(context, job));
        registry.AddActivityFunc<StageWork, Pipeline.Generation.StageResult>(StageActivities.StageC,
            (_, work) => services.GetRequiredService<StageActivities>().RunStageCAsync(work, CancellationToken.None));
        registry.AddActivityFunc<StageWork, Pipeline.Generation.StageResult>(StageActivities.StageB,
            (_, work) => services.GetRequiredService<StageActivities>().RunStageBAsync(work, CancellationToken.None));
        registry.AddActivityFunc<StageWork, Pipeline.Generation.StageResult>(StageActivities.StageA,
            (_, work) => services.GetRequiredService<StageActivities>().RunStageAAsync(work, CancellationToken.None));
        registry.AddOrchestratorFunc<BulkJobInput, BulkSummary>(BulkGenerateOrchestration.Name, (context, input) => BulkGenerateOrchestration.RunAsync(context, input));
        registry.AddActivityFunc<string, BulkPlanSummary>(BulkActivities.Plan,
            (_, jobId) => services.GetRequiredService<BulkActivities>().PlanAsync(jobId, CancellationToken.None));
        registry.AddActivityFunc<BulkManifestInput, BulkSummary>(BulkActivities.WriteManifest,
            (_, input) => services.GetRequiredService<BulkActivities>().WriteManifestAsync(input, CancellationToken.None));
        registry.AddOrchestratorFunc<FineTuneInput, FineTuneResult?>(FineTuneOrchestration.Name, (context, input) => FineTuneOrchestration.RunAsync(context, input));
        registry.AddActivityFunc<PrepareWork, Pipeline.Training.PreparedSummary>(FineTuneActivities.Prepare,
            (_, work) => services.GetRequiredService<FineTuneActivities>().PrepareAsync(work, CancellationToken.None));
        registry.AddActivityFunc<ChunkWork, Pipeline.Training.ChunkOutcome>(FineTuneActivities.TrainChunk,
            (_, work) => services.GetRequiredService<FineTuneActivities>().TrainChunkAsync(work, CancellationToken.None));
        registry.AddActivityFunc<GridWork, string>(FineTuneActivities.RenderGrid,
            (_, work) => services.GetRequiredService<FineTuneActivities>().RenderGridAsync(work, CancellationToken.None));
        registry.AddActivityFunc<string, PublishedVersion>(FineTuneActivities.Publish,
            (_, runId) => services.GetRequiredService<FineTuneActivities>().PublishAsync(runId, CancellationToken.None));
        return registry;
    }
}
