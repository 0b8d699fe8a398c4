using Microsoft.Azure.Functions.Worker;
using Wuerstchen.Workflows.Webhooks;

namespace Wuerstchen.Functions;

/// <summary>The Functions host's entry points for the completion webhooks of generations and bulk jobs.</summary>
public sealed class WebhookFunctions(WebhookActivities activities)
{
    [Function(WebhookActivities.SendGeneration)]
    public Task<int> SendGeneration([ActivityTrigger] GenerationWebhook webhook, CancellationToken cancellationToken) =>
        activities.SendGenerationAsync(webhook, cancellationToken);

    [Function(WebhookActivities.SendBulk)]
    public Task<int> SendBulk([ActivityTrigger] BulkWebhook webhook, CancellationToken cancellationToken) =>
        activities.SendBulkAsync(webhook, cancellationToken);
}
