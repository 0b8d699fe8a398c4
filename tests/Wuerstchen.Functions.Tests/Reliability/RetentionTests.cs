using Microsoft.AspNetCore.Mvc;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Wuerstchen.Functions.Generation;
using Wuerstchen.Models.Tests;
using Wuerstchen.Pipeline.Bulk;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Workflows.Bulk;
using Wuerstchen.Workflows.Generation;
using Wuerstchen.Workflows.Retention;

namespace Wuerstchen.Functions.Tests.Reliability;

public sealed class RetentionTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static async Task<GenerationResult> GenerateAsync(TestEnvironment environment, int decoderSteps)
    {
        string body = HttpRequests.Json(new { prompt = "kept or purged", width = 128, height = 128, priorSteps = 2, decoderSteps, seed = 5 });
        var started = Assert.IsType<AcceptedResult>(await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", body), environment.Client, Token));
        string id = (string)started.Value!.GetType().GetProperty("Id")!.GetValue(started.Value)!;
        var done = await environment.Client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true, Token);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
        return done.ReadOutputAs<GenerationResult>()!;
    }

    private static async Task<List<string>> NamesAsync(IBlobStore store, string prefix)
    {
        var names = new List<string>();
        await foreach (var blob in store.ListAsync(prefix, Token))
            names.Add(blob.Name);
        return names;
    }

    [Fact]
    public async Task FinishedWorkPastTheRetentionPeriodIsPurgedWithItsLatentsAndImagesAndSharedLatentsStay()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false, settings: new Dictionary<string, string?> { ["Wuerstchen:Retention:Period"] = "01:00:00" });
        var purger = environment.Services.GetRequiredService<RetentionPurger>();
        var old = await GenerateAsync(environment, decoderSteps: 2);
        await environment.Services.GetRequiredService<BulkJobIntake>().AcceptAsync(environment.Client,
            HttpRequests.Json(new { jobId = "old-job", settings = new { width = 128, height = 128, priorSteps = 2, decoderSteps = 2, seed = 70 }, prompts = new[] { "a", "b", "c", "d" } }), "m", Token);
        await environment.Client.WaitForInstanceCompletionAsync(BulkGenerateOrchestration.InstanceIdFor("old-job"), Token);
        var imagesBefore = await NamesAsync(environment.Store, "images/");
        await Task.Delay(1500, Token);
        DateTimeOffset cutoff = DateTimeOffset.UtcNow;
        await Task.Delay(500, Token);
        // Recent work that shares the old generation's Stage C latents (same prompt and seed, another decoder setting).
        var recent = await GenerateAsync(environment, decoderSteps: 3);
        Assert.Equal(old.StageCBlob, recent.StageCBlob);

        var report = await purger.PurgeAsync(environment.Client, cutoff + TimeSpan.FromHours(1), Token);

        var instances = new List<string>();
        await foreach (var instance in environment.Client.GetAllInstancesAsync())
            instances.Add(instance.InstanceId);
        Assert.Equal([recent.GenerationId], instances);
        Assert.Equal(1 + 1 + 2, report.InstancesPurged); // the old generation, the bulk job and its two batches
        Assert.False(await environment.Store.ExistsAsync(old.StageBBlob, Token));
        Assert.False(await environment.Store.ExistsAsync(GenerationService.PlanBlobFor(old.GenerationId), Token));
        Assert.True(await environment.Store.ExistsAsync(old.StageCBlob, Token), "latents a kept generation uses were purged");
        Assert.True(await environment.Store.ExistsAsync(recent.StageBBlob, Token));
        Assert.Equal(new[] { old.StageCBlob, recent.StageBBlob }.Order(StringComparer.Ordinal), (await NamesAsync(environment.Store, "latents/")).Order(StringComparer.Ordinal));
        Assert.All(await NamesAsync(environment.Store, "generations/"), name => Assert.StartsWith($"generations/{recent.GenerationId}/", name));
        Assert.Equal([BulkBlobs.Manifest("old-job"), BulkBlobs.Summary("old-job")], (await NamesAsync(environment.Store, "bulk/old-job/")).Order(StringComparer.Ordinal));
        Assert.True(imagesBefore.All((await NamesAsync(environment.Store, "images/")).Contains), "images are kept unless configured");
        Assert.Equal(200, HttpRequests.StatusOf(await environment.Http.Get(HttpRequests.Make("GET", $"/api/generations/{recent.GenerationId}"), environment.Client, recent.GenerationId, Token)));
        Assert.Equal(404, HttpRequests.StatusOf(await environment.Http.Get(HttpRequests.Make("GET", $"/api/generations/{old.GenerationId}"), environment.Client, old.GenerationId, Token)));

        // A second run finds nothing more to do.
        Assert.Equal(new RetentionReport(0, 0, 0), await purger.PurgeAsync(environment.Client, cutoff + TimeSpan.FromHours(1), Token));
        ReliabilityLog.Record($"retention: {report.InstancesPurged} finished instances and {report.BlobsDeleted} intermediate blobs purged past the period, {report.LatentsKeptInUse} shared latents kept for kept work, 0 images or kept results lost");
    }

    [Fact]
    public async Task ImagesGoOnlyWhenConfigured()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false, settings: new Dictionary<string, string?>
        {
            ["Wuerstchen:Retention:Period"] = "00:00:01",
            ["Wuerstchen:Retention:PurgeImages"] = "true",
        });
        var old = await GenerateAsync(environment, decoderSteps: 2);

        var report = await environment.Services.GetRequiredService<RetentionPurger>().PurgeAsync(environment.Client, DateTimeOffset.UtcNow + TimeSpan.FromMinutes(1), Token);

        Assert.Equal(1, report.InstancesPurged);
        Assert.Empty(await NamesAsync(environment.Store, "images/"));
        Assert.Empty(await NamesAsync(environment.Store, "latents/"));
        Assert.Empty(await NamesAsync(environment.Store, "generations/"));
        Assert.NotEmpty(old.Images);
    }
}
