using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using Wuerstchen.Workflows.Retention;

namespace Wuerstchen.Functions.Retention;

/// <summary>The retention timer: every hour, purges finished generations and bulk jobs older than <c>Wuerstchen:Retention:Period</c>.</summary>
public sealed class RetentionFunctions(RetentionPurger purger)
{
    [Function("PurgeFinishedWork")]
    public async Task Purge(
        [TimerTrigger("0 17 * * * *")] TimerInfo timer,
        [DurableClient] DurableTaskClient client,
        CancellationToken cancellationToken) =>
        await purger.PurgeAsync(client, DateTimeOffset.UtcNow, cancellationToken);
}
