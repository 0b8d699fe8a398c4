using Microsoft.AspNetCore.Mvc;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Wuerstchen.Functions.Generation;
using Wuerstchen.Functions.Training;
using Wuerstchen.Pipeline.Bulk;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Workflows;
using Wuerstchen.Workflows.Bulk;
using Wuerstchen.Workflows.Generation;
using Wuerstchen.Workflows.Training;

namespace Wuerstchen.Functions.Tests;

/// <summary>Cancelling stops the running stage within a step, wherever it runs; each endpoint acts only on its own kind of id.</summary>
public sealed class CancellationTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    /// <summary>Long enough on the tiny models (a tenth of a second a step here) that a stage is always caught running.</summary>
    private static readonly object LongRequest = new { prompt = "a long one", width = 2048, height = 2048, seed = 1, priorSteps = 200, decoderSteps = 100 };

    /// <summary>Progress on every step, so the step a stage reached is known to within one.</summary>
    private static readonly Dictionary<string, string?> EveryStep = new() { ["Wuerstchen:Workflows:ProgressInterval"] = "00:00:00" };

    private static string IdOf(IActionResult started)
    {
        var accepted = Assert.IsType<AcceptedResult>(started);
        return (string)accepted.Value!.GetType().GetProperty("Id")!.GetValue(accepted.Value)!;
    }

    private static async Task<string> StartLongAsync(TestEnvironment environment) =>
        IdOf(await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", HttpRequests.Json(LongRequest)), environment.Client, Token));

    /// <summary>Waits until generation <paramref name="id"/>'s Stage C has published step <paramref name="step"/> or later; that step.</summary>
    private static async Task<int> StageCReachedAsync(IBlobStore store, string id, int step)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Token);
        timeout.CancelAfter(TimeSpan.FromMinutes(2));
        while (true)
        {
            if (await ProgressPublisher.ReadAsync(store, id, timeout.Token) is { Stage: StageActivities.StageC } progress && progress.Step >= step)
                return progress.Step;
            await Task.Delay(20, timeout.Token);
        }
    }

    private static async Task<List<string>> BlobsAsync(IBlobStore store, string prefix)
    {
        var names = new List<string>();
        await foreach (var blob in store.ListAsync(prefix, Token))
            names.Add(blob.Name);
        return names;
    }

    private static async Task<OrchestrationMetadata> EndedAsync(TestEnvironment environment, string id)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Token);
        timeout.CancelAfter(TimeSpan.FromMinutes(3));
        return await environment.Client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true, timeout.Token);
    }

    [Fact]
    public async Task DeletingARunningGenerationStopsItsStageWithinAStepAndWritesNothing()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false, settings: EveryStep);
        string id = await StartLongAsync(environment);
        int atCancel = await StageCReachedAsync(environment.Store, id, 2);

        Assert.Equal(202, HttpRequests.StatusOf(await environment.Http.Cancel(HttpRequests.Make("DELETE", $"/api/generations/{id}"), environment.Client, id, Token)));
        Assert.Equal(OrchestrationRuntimeStatus.Terminated, (await EndedAsync(environment, id)).RuntimeStatus);

        // The prior is free again at once: a small generation with the same model runs to the end.
        var service = environment.Services.GetRequiredService<GenerationService>();
        var next = await service.StartAsync(environment.Client, new GenerationRequest { Prompt = "next", Width = 128, Height = 128, PriorSteps = 2, DecoderSteps = 2, Seed = 2 }, null, Token);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await EndedAsync(environment, next.GenerationId!)).RuntimeStatus);

        var last = Assert.IsType<StageProgress>(await ProgressPublisher.ReadAsync(environment.Store, id, Token));
        TestContext.Current.TestOutputHelper?.WriteLine($"Stage C was at step {atCancel} of 200 when cancelled and stopped after step {last.Step}.");
        Assert.Equal(StageActivities.StageC, last.Stage);
        Assert.True(last.Step <= atCancel + 3, $"Stage C went on from step {atCancel} to step {last.Step} after the cancel");
        var stageC = GenerationStages.StageCBlob((await service.GetStatusAsync(environment.Client, id, Token))!.Batch!);
        Assert.False(await environment.Store.ExistsAsync(stageC, Token), "the cancelled Stage C wrote its blob");
        Assert.Single(await BlobsAsync(environment.Store, "latents/stage-c/")); // the small generation's
    }

    [Fact]
    public async Task ACancelMarkerWrittenByAnotherWorkerStopsTheStageWhereItRunsAndIsNotRetried()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false, settings: EveryStep);
        string id = await StartLongAsync(environment);
        int atCancel = await StageCReachedAsync(environment.Store, id, 2);

        // Another replica answered the DELETE: all this worker sees is the marker in the shared store.
        await environment.Store.WriteAsync(GenerationCancellation.MarkerBlobFor(id), new MemoryStream("{}"u8.ToArray()), cancellationToken: Token);

        var ended = await EndedAsync(environment, id);
        Assert.Equal(OrchestrationRuntimeStatus.Failed, ended.RuntimeStatus);
        Assert.Contains("cancelled", ended.FailureDetails!.ErrorMessage);
        var last = Assert.IsType<StageProgress>(await ProgressPublisher.ReadAsync(environment.Store, id, Token));
        TestContext.Current.TestOutputHelper?.WriteLine($"Stage C was at step {atCancel} of 200 when the marker was written and stopped after step {last.Step}.");
        Assert.True(last.Step <= atCancel + 3, $"Stage C went on from step {atCancel} to step {last.Step} after the marker was written");
        Assert.Empty(await BlobsAsync(environment.Store, "latents/"));
    }

    [Fact]
    public async Task EachEndpointAnswersOnlyForItsOwnKindOfId()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false);
        var http = environment.Http;
        var fineTunes = environment.FineTunes;

        // A finished bulk job and its batch.
        string job = HttpRequests.Json(new { jobId = "kinds", settings = new { width = 128, height = 128, priorSteps = 2, decoderSteps = 2, seed = 3 }, prompts = new[] { "one" } });
        await environment.Services.GetRequiredService<BulkJobIntake>().AcceptAsync(environment.Client, job, "m", Token);
        string bulk = BulkGenerateOrchestration.InstanceIdFor("kinds"), batch = BulkGenerateOrchestration.BatchInstanceIdFor("kinds", 0);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await EndedAsync(environment, bulk)).RuntimeStatus);

        // A fine-tune that stays running: its first activity fails and waits ten minutes for its retry.
        string fineTune = "ft-kinds";
        await environment.Client.ScheduleNewOrchestrationInstanceAsync(FineTuneOrchestration.Name,
            new FineTuneInput("no-such-run", "start", new RetrySettings { MaxAttempts = 2, FirstInterval = TimeSpan.FromMinutes(10), MaxInterval = TimeSpan.FromMinutes(10) }),
            new StartOrchestrationOptions(fineTune), Token);

        // A generation that stays running.
        string generation = await StartLongAsync(environment);
        await StageCReachedAsync(environment.Store, generation, 1);

        foreach (string other in new[] { bulk, fineTune })
        {
            Assert.Equal(404, HttpRequests.StatusOf(await http.Get(HttpRequests.Make("GET", $"/api/generations/{other}"), environment.Client, other, Token)));
            Assert.Equal(404, HttpRequests.StatusOf(await http.GetImage(HttpRequests.Make("GET", $"/api/generations/{other}/images/0"), environment.Client, other, 0, Token)));
            Assert.Equal(404, HttpRequests.StatusOf(await http.Cancel(HttpRequests.Make("DELETE", $"/api/generations/{other}"), environment.Client, other, Token)));
        }
        foreach (string other in new[] { bulk, batch, generation })
        {
            Assert.Equal(404, HttpRequests.StatusOf(await fineTunes.Get(HttpRequests.Make("GET", $"/api/finetunes/{other}"), environment.Client, other, Token)));
            Assert.Equal(404, HttpRequests.StatusOf(await fineTunes.GetGrid(HttpRequests.Make("GET", $"/api/finetunes/{other}/grid"), environment.Client, other, Token)));
            Assert.Equal(404, HttpRequests.StatusOf(await fineTunes.Cancel(HttpRequests.Make("DELETE", $"/api/finetunes/{other}"), environment.Client, other, Token)));
        }

        // Nothing was cancelled by a request for another kind.
        Assert.Equal(OrchestrationRuntimeStatus.Running, (await environment.Client.GetInstanceAsync(fineTune, Token))!.RuntimeStatus);
        Assert.Equal(OrchestrationRuntimeStatus.Running, (await environment.Client.GetInstanceAsync(generation, Token))!.RuntimeStatus);
        Assert.False(await environment.Store.ExistsAsync(GenerationCancellation.MarkerBlobFor(fineTune), Token));

        // A bulk batch is a generation: its status carries its recipe from the job's plan.
        var status = Assert.IsType<GenerationStatusResponse>(Assert.IsType<OkObjectResult>(await http.Get(HttpRequests.Make("GET", $"/api/generations/{batch}"), environment.Client, batch, Token)).Value);
        Assert.Equal(("Completed", "one"), (status.Status, status.Recipe!.Items.Single().Prompt));

        // Each is cancelled through its own endpoint.
        Assert.Equal(202, HttpRequests.StatusOf(await fineTunes.Cancel(HttpRequests.Make("DELETE", $"/api/finetunes/{fineTune}"), environment.Client, fineTune, Token)));
        Assert.Equal(202, HttpRequests.StatusOf(await http.Cancel(HttpRequests.Make("DELETE", $"/api/generations/{generation}"), environment.Client, generation, Token)));
        Assert.Equal(OrchestrationRuntimeStatus.Terminated, (await EndedAsync(environment, fineTune)).RuntimeStatus);
        Assert.Equal(OrchestrationRuntimeStatus.Terminated, (await EndedAsync(environment, generation)).RuntimeStatus);
    }

    [Fact]
    public async Task CancellingOneBatchOfABulkJobRecordsItsPromptsAsCancelledAndTheJobGoesOn()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false, settings: EveryStep);
        string message = HttpRequests.Json(new
        {
            jobId = "one-cancelled",
            settings = new { width = 128, height = 128, priorSteps = 200, decoderSteps = 2, seed = 40 },
            prompts = new object[] { "small one", new { prompt = "a big one", width = 2048, height = 2048 }, "small two" },
        });
        Assert.Equal(IntakeDisposition.Started, (await environment.Services.GetRequiredService<BulkJobIntake>().AcceptAsync(environment.Client, message, "m", Token)).Disposition);
        string bulk = BulkGenerateOrchestration.InstanceIdFor("one-cancelled");

        // The big prompt is a batch of its own; wait for its Stage C and cancel that batch alone.
        while (!await environment.Store.ExistsAsync(BulkBlobs.Plan("one-cancelled"), Token))
            await Task.Delay(20, Token);
        var plan = await environment.Services.GetRequiredService<BatchPlanStore>().ReadAllAsync(BulkBlobs.Plan("one-cancelled"), Token);
        int bigBatch = plan.Select((b, i) => (b, i)).Single(x => x.b.Settings.Width == 2048).i;
        string batch = BulkGenerateOrchestration.BatchInstanceIdFor("one-cancelled", bigBatch);
        await StageCReachedAsync(environment.Store, batch, 2);
        Assert.Equal(202, HttpRequests.StatusOf(await environment.Http.Cancel(HttpRequests.Make("DELETE", $"/api/generations/{batch}"), environment.Client, batch, Token)));

        var done = await EndedAsync(environment, bulk);
        Assert.True(done.RuntimeStatus == OrchestrationRuntimeStatus.Completed, $"{done.RuntimeStatus}: {done.FailureDetails?.ErrorMessage}");
        var summary = done.ReadOutputAs<BulkSummary>()!;
        Assert.Equal((3, 2, 0, 0, 1), (summary.Total, summary.Succeeded, summary.Failed, summary.Rejected, summary.Cancelled));
        var manifest = await BulkManifestWriter.ReadAsync(environment.Store, "one-cancelled", Token);
        Assert.Equal(["succeeded", "cancelled", "succeeded"], manifest.Select(e => e.Status));
        Assert.Empty(manifest[1].Images);
        Assert.Contains("cancelled", manifest[1].Error);
        Assert.Equal("Failed", (await environment.Services.GetRequiredService<GenerationService>().GetStatusAsync(environment.Client, batch, Token))!.RuntimeStatus);
    }
}
