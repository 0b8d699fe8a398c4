using Microsoft.AspNetCore.Mvc;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Wuerstchen.Workflows.Generation;

namespace Wuerstchen.Functions.Tests;

/// <summary>
/// <c>?wait</c> and <c>Prefer: wait</c> answer when the generation ends, not when the Durable client's own wait next
/// polls: on the Azure Storage backend that wait looks every couple of seconds, and a small image's answer came 1–2 s late.
/// </summary>
public sealed class WaitForCompletionTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AWaitingRequestAnswersWhenTheGenerationEndsEvenIfTheClientsOwnWaitNeverDoes()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false);
        var started = Assert.IsType<AcceptedResult>(await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", HttpRequests.Json(new
        {
            prompt = "a lighthouse in a storm",
            width = 128,
            height = 128,
            seed = 5,
            priorSteps = 2,
            decoderSteps = 2,
        })), environment.Client, Token));
        string id = (string)started.Value!.GetType().GetProperty("Id")!.GetValue(started.Value)!;
        var client = new NeverSeesTheEnd(environment.Client);
        var generations = environment.Services.GetRequiredService<GenerationService>();

        // Ten minutes allowed: the answer must come from the generation's end, long before.
        var status = await generations.WaitAsync(client, id, TimeSpan.FromMinutes(10), Token).WaitAsync(TimeSpan.FromMinutes(2), Token);

        Assert.Equal("Completed", status!.RuntimeStatus);
        Assert.True(client.Looks > 0);
    }

    /// <summary>The engine's client, except that its wait for completion only ends when cancelled.</summary>
    private sealed class NeverSeesTheEnd(DurableTaskClient inner) : DurableTaskClient(inner.Name)
    {
        private int _looks;

        public int Looks => _looks;

        public override async Task<OrchestrationMetadata> WaitForInstanceCompletionAsync(string instanceId, bool getInputsAndOutputs = false,
            CancellationToken cancellation = default)
        {
            await Task.Delay(Timeout.Infinite, cancellation);
            throw new InvalidOperationException("unreachable");
        }

        public override Task<OrchestrationMetadata?> GetInstancesAsync(string instanceId, bool getInputsAndOutputs = false, CancellationToken cancellation = default)
        {
            Interlocked.Increment(ref _looks);
            return inner.GetInstancesAsync(instanceId, getInputsAndOutputs, cancellation);
        }

        public override Task<string> ScheduleNewOrchestrationInstanceAsync(TaskName orchestratorName, object? input = null, StartOrchestrationOptions? options = null,
            CancellationToken cancellation = default) => inner.ScheduleNewOrchestrationInstanceAsync(orchestratorName, input, options, cancellation);

        public override Task RaiseEventAsync(string instanceId, string eventName, object? eventPayload = null, CancellationToken cancellation = default) =>
            inner.RaiseEventAsync(instanceId, eventName, eventPayload, cancellation);

        public override Task<OrchestrationMetadata> WaitForInstanceStartAsync(string instanceId, bool getInputsAndOutputs = false, CancellationToken cancellation = default) =>
            inner.WaitForInstanceStartAsync(instanceId, getInputsAndOutputs, cancellation);

        public override Task SuspendInstanceAsync(string instanceId, string? reason = null, CancellationToken cancellation = default) =>
            inner.SuspendInstanceAsync(instanceId, reason, cancellation);

        public override Task ResumeInstanceAsync(string instanceId, string? reason = null, CancellationToken cancellation = default) =>
            inner.ResumeInstanceAsync(instanceId, reason, cancellation);

        public override AsyncPageable<OrchestrationMetadata> GetAllInstancesAsync(OrchestrationQuery? filter = null) => inner.GetAllInstancesAsync(filter);

        public override Task<PurgeResult> PurgeInstanceAsync(string instanceId, PurgeInstanceOptions? options = null, CancellationToken cancellation = default) =>
            inner.PurgeInstanceAsync(instanceId, options, cancellation);

        public override Task<PurgeResult> PurgeAllInstancesAsync(PurgeInstancesFilter filter, PurgeInstanceOptions? options = null, CancellationToken cancellation = default) =>
            inner.PurgeAllInstancesAsync(filter, options, cancellation);

        public override ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
