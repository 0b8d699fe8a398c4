using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Wuerstchen.Pipeline.Bulk;
using Wuerstchen.Workflows.Bulk;

namespace Wuerstchen.Functions.Bulk;

/// <summary>Queue-triggered bulk generation: the trigger only starts the orchestration; GPU work runs in its activities.</summary>
public sealed class BulkFunctions(BulkJobIntake intake, BulkActivities activities)
{
    [Function("BulkGenerationQueue")]
    public Task Accept(
        [QueueTrigger("%Wuerstchen:Bulk:QueueName%", Connection = "AzureWebJobsStorage")] string message,
        string id,
        DateTimeOffset? insertionTime,
        [DurableClient] DurableTaskClient client,
        CancellationToken cancellationToken) =>
        intake.AcceptAsync(client, message, id, cancellationToken, insertionTime);

    [Function(BulkGenerateOrchestration.Name)]
    public static Task<BulkSummary> BulkGenerate([OrchestrationTrigger] TaskOrchestrationContext context) =>
        BulkGenerateOrchestration.RunAsync(context, context.GetInput<BulkJobInput>()!);

    [Function(BulkActivities.Plan)]
    public Task<BulkPlanSummary> Plan([ActivityTrigger] string jobId, CancellationToken cancellationToken) =>
        activities.PlanAsync(jobId, cancellationToken);

    [Function(BulkActivities.WriteManifest)]
    public Task<BulkSummary> WriteManifest([ActivityTrigger] BulkManifestInput input, CancellationToken cancellationToken) =>
        activities.WriteManifestAsync(input, cancellationToken);
}
