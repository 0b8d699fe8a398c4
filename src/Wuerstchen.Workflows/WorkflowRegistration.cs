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
    /// <param name="stopping">
    /// The activities' cancellation, as the Functions host gives each activity its own: cancelled when this host stops
    /// (the CLI's Ctrl+C), so a running stage stops at its next step. A client's cancel of one generation reaches its
    /// stage through <see cref="GenerationCancellation"/> either way.
    /// </param>
    public static DurableTaskRegistry AddWuerstchenWorkflows(this DurableTaskRegistry registry, IServiceProvider services, CancellationToken stopping = default)
    {
        registry.AddOrchestratorFunc<GenerationJob, GenerationResult>(GenerateImageOrchestration.Name, (context, job) => GenerateImageOrchestration.RunAsync(context, job));
        registry.AddActivityFunc<StageWork, Pipeline.Generation.StageResult>(StageActivities.StageC,
            (_, work) => services.GetRequiredService<StageActivities>().RunStageCAsync(work, stopping));
        registry.AddActivityFunc<StageWork, Pipeline.Generation.StageResult>(StageActivities.StageB,
            (_, work) => services.GetRequiredService<StageActivities>().RunStageBAsync(work, stopping));
        registry.AddActivityFunc<StageWork, Pipeline.Generation.StageResult>(StageActivities.StageA,
            (_, work) => services.GetRequiredService<StageActivities>().RunStageAAsync(work, stopping));
        registry.AddOrchestratorFunc<BulkJobInput, BulkSummary>(BulkGenerateOrchestration.Name, (context, input) => BulkGenerateOrchestration.RunAsync(context, input));
        registry.AddActivityFunc<string, BulkPlanSummary>(BulkActivities.Plan,
            (_, jobId) => services.GetRequiredService<BulkActivities>().PlanAsync(jobId, stopping));
        registry.AddActivityFunc<BulkManifestInput, BulkSummary>(BulkActivities.WriteManifest,
            (_, input) => services.GetRequiredService<BulkActivities>().WriteManifestAsync(input, stopping));
        registry.AddOrchestratorFunc<FineTuneInput, FineTuneResult?>(FineTuneOrchestration.Name, (context, input) => FineTuneOrchestration.RunAsync(context, input));
        registry.AddActivityFunc<PrepareWork, Pipeline.Training.PreparedSummary>(FineTuneActivities.Prepare,
            (_, work) => services.GetRequiredService<FineTuneActivities>().PrepareAsync(work, stopping));
        registry.AddActivityFunc<ChunkWork, Pipeline.Training.ChunkOutcome>(FineTuneActivities.TrainChunk,
            (_, work) => services.GetRequiredService<FineTuneActivities>().TrainChunkAsync(work, stopping));
        registry.AddActivityFunc<GridWork, string>(FineTuneActivities.RenderGrid,
            (_, work) => services.GetRequiredService<FineTuneActivities>().RenderGridAsync(work, stopping));
        registry.AddActivityFunc<string, PublishedVersion>(FineTuneActivities.Publish,
            (_, runId) => services.GetRequiredService<FineTuneActivities>().PublishAsync(runId, stopping));
        return registry;
    }
}
