using Microsoft.AspNetCore.Mvc;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Wuerstchen.Functions.Generation;
using Wuerstchen.Models.Imaging;
using Wuerstchen.Models.Pipelines;
using Wuerstchen.Pipeline.Bulk;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Generation.Batching;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Workflows.Bulk;
using Wuerstchen.Workflows.Generation;

namespace Wuerstchen.Functions.Tests;

/// <summary>
/// Concurrent generations on the tiny fixture models through the real engine: batched together, each still gets its
/// own images under its own names, the same (within one 8-bit level) as when it runs alone from its PNG's recipe.
/// </summary>
public sealed class BatchingTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static readonly Dictionary<string, string?> Batched = new()
    {
        ["Wuerstchen:Batching:MaxBatchImages"] = "8",
        // Long enough that activities the engine starts together always meet; a full batch does not wait.
        ["Wuerstchen:Batching:MaxWait"] = "00:00:01",
    };

    private static readonly Dictionary<string, string?> Alone = new() { ["Wuerstchen:Batching:MaxBatchImages"] = "1" };

    private static object Request(string prompt, long seed, int images, string? negativePrompt = null, long? decoderSeed = null) => new
    {
        prompt, negativePrompt, seed, decoderSeed, images, width = 128, height = 256, priorSteps = 3, decoderSteps = 2,
    };

    private static async Task<string> StartAsync(TestEnvironment environment, object request)
    {
        var started = await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", HttpRequests.Json(request)), environment.Client, Token);
        return started switch
        {
            AcceptedResult accepted => Assert.IsType<StartedResponse>(accepted.Value).Id,
            _ => throw new InvalidOperationException($"Unexpected start result {started.GetType().Name}."),
        };
    }

    private static async Task<GenerationStatusResponse> CompleteAsync(TestEnvironment environment, string id)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Token);
        timeout.CancelAfter(TimeSpan.FromMinutes(3));
        await environment.Client.WaitForInstanceCompletionAsync(id, timeout.Token);
        var status = Assert.IsType<OkObjectResult>(await environment.Http.Get(HttpRequests.Make("GET", $"/api/generations/{id}"), environment.Client, id, Token));
        return Assert.IsType<GenerationStatusResponse>(status.Value);
    }

    private static async Task<byte[]> PngAsync(TestEnvironment environment, string id, int index)
    {
        var image = Assert.IsType<FileStreamResult>(await environment.Http.GetImage(HttpRequests.Make("GET", $"/api/generations/{id}/images/{index}"), environment.Client, id, index, Token));
        using var buffer = new MemoryStream();
        await image.FileStream.CopyToAsync(buffer, Token);
        return buffer.ToArray();
    }

    private static int LargestDifference(byte[] a, byte[] b)
    {
        using var x = Image.Load<Rgb24>(a);
        using var y = Image.Load<Rgb24>(b);
        Assert.Equal((x.Width, x.Height), (y.Width, y.Height));
        int largest = 0;
        for (int row = 0; row < x.Height; row++)
        {
            for (int column = 0; column < x.Width; column++)
            {
                Rgb24 p = x[column, row], q = y[column, row];
                largest = Math.Max(largest, Math.Max(Math.Abs(p.R - q.R), Math.Max(Math.Abs(p.G - q.G), Math.Abs(p.B - q.B))));
            }
        }
        return largest;
    }

    [Fact]
    public async Task ConcurrentGenerationsShareModelCallsAndEachImageMatchesItsRecipeRunAlone()
    {
        object[] requests =
        [
            Request("a small red dragon", seed: 21, images: 2),
            Request("a lighthouse at dusk", seed: 22, images: 1, negativePrompt: "blurry"),
            Request("a blue fox in snow", seed: 23, images: 1, decoderSeed: 5),
            Request("a small red dragon", seed: 900, images: 2),
        ];
        var batchedImages = new List<(GenerationRecipe Recipe, byte[] Png, string Blob)>();
        await using (var environment = await TestEnvironment.StartAsync(useAzurite: false, settings: Batched))
        {
            var ids = await Task.WhenAll(requests.Select(r => StartAsync(environment, r)));
            var statuses = await Task.WhenAll(ids.Select(id => CompleteAsync(environment, id)));
            Assert.All(statuses, s => Assert.Equal("Completed", s.Status));
            var (calls, images) = environment.Services.GetRequiredService<StageBatcher>().Totals;
            // 6 images in 4 generations through 3 stages; batched, fewer calls than 3 × 4.
            Assert.True(calls < 12 && images == 18, $"{calls} model calls for {images} images");

            foreach (var status in statuses)
            {
                Assert.Equal(status.Recipe!.Settings.ImagesPerPrompt, status.Images.Count);
                for (int n = 0; n < status.Images.Count; n++)
                {
                    byte[] png = await PngAsync(environment, status.Id, n);
                    var recipe = PngImages.ReadRecipe(new MemoryStream(png))!;
                    Assert.Equal((status.Recipe.Items[0].Prompt, status.Recipe.Items[0].Seed, n), (recipe.Prompt, recipe.Seed, recipe.ImageIndex));
                    var batch = status.Recipe;
                    batchedImages.Add((recipe, png, GenerationStages.ImageBlob(batch, 0, n)));
                    Assert.True(await environment.Store.ExistsAsync(GenerationStages.ImageBlob(batch, 0, n), Token));
                }
            }
        }
        Assert.Equal(6, batchedImages.Select(i => i.Blob).Distinct().Count());

        await using var alone = await TestEnvironment.StartAsync(useAzurite: false, settings: Alone);
        foreach (var group in batchedImages.GroupBy(i => (i.Recipe.Prompt, i.Recipe.Seed)))
        {
            var recipe = group.First().Recipe;
            string id = await StartAsync(alone, Request(recipe.Prompt, (long)recipe.Seed, recipe.ImagesPerPrompt, recipe.NegativePrompt, (long?)recipe.DecoderSeed));
            var status = await CompleteAsync(alone, id);
            Assert.Equal("Completed", status.Status);
            foreach (var image in group)
            {
                int difference = LargestDifference(image.Png, await PngAsync(alone, id, image.Recipe.ImageIndex));
                Assert.True(difference <= 1, $"'{recipe.Prompt}' seed {recipe.Seed} image {image.Recipe.ImageIndex} differs by {difference} levels batched and alone");
            }
        }
        var (aloneCalls, aloneImages) = alone.Services.GetRequiredService<StageBatcher>().Totals;
        Assert.Equal((12L, 18L), (aloneCalls, aloneImages)); // one generation per model call: 4 generations × 3 stages
    }

    /// <summary>Polls a generation's status until its progress satisfies <paramref name="condition"/>.</summary>
    private static async Task<GenerationStatusResponse> StatusWhenAsync(TestEnvironment environment, string id, Func<StageProgress?, bool> condition)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Token);
        timeout.CancelAfter(TimeSpan.FromMinutes(1));
        while (true)
        {
            var result = Assert.IsType<OkObjectResult>(await environment.Http.Get(HttpRequests.Make("GET", $"/api/generations/{id}"), environment.Client, id, timeout.Token));
            var status = Assert.IsType<GenerationStatusResponse>(result.Value);
            if (condition(status.Progress))
                return status;
            Assert.True(status.Status is "Pending" or "Running", $"{id} ended {status.Status} before its progress showed what was expected");
            await Task.Delay(50, timeout.Token);
        }
    }

    [Fact]
    public async Task EachGenerationsStatusSaysItWaitsForABatchAndThenReportsItsOwnProgressInTheSharedCall()
    {
        var settings = new Dictionary<string, string?>
        {
            ["Wuerstchen:Batching:MaxBatchImages"] = "2",
            // A lone request would wait the longest allowed for a batch-mate; the second request fills its batch long before.
            ["Wuerstchen:Batching:MaxWait"] = "00:00:10",
        };
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false, settings: settings);
        string first = await StartAsync(environment, Request("a lighthouse at dusk", seed: 31, images: 1));
        var waiting = await StatusWhenAsync(environment, first, p => p?.State == StageProgress.WaitingForBatch);
        Assert.Equal(("Running", "StageC", 0, (int?)null), (waiting.Status, waiting.Progress!.Stage, waiting.Progress.Step, waiting.Progress.BatchImages));
        await Task.Delay(TimeSpan.FromMilliseconds(500), Token);
        var stillWaiting = await StatusWhenAsync(environment, first, _ => true);
        Assert.Equal(("StageC", StageProgress.WaitingForBatch), (stillWaiting.Progress!.Stage, stillWaiting.Progress.State));
        Assert.Equal((0L, 0L), environment.Services.GetRequiredService<StageBatcher>().Totals);

        string second = await StartAsync(environment, Request("a blue fox in snow", seed: 32, images: 1));
        var statuses = await Task.WhenAll(new[] { first, second }.Select(id => CompleteAsync(environment, id)));
        Assert.All(statuses, s => Assert.Equal("Completed", s.Status));
        // Every stage ran both as one call of two images, and each generation's own progress says so.
        Assert.Equal((3L, 6L), environment.Services.GetRequiredService<StageBatcher>().Totals);
        foreach (string id in new[] { first, second })
        {
            var last = Assert.IsType<StageProgress>(await ProgressPublisher.ReadAsync(environment.Store, id, Token));
            Assert.Equal(("StageA", 1, 1, StageProgress.Running, (int?)2), (last.Stage, last.Step, last.StepCount, last.State, last.BatchImages));
        }
    }

    [Fact]
    public async Task ANonFullBulkBatchSharesCallsWithAnHttpGenerationAndReDecodesShareCallsWithEachOther()
    {
        var settings = new Dictionary<string, string?>
        {
            // Each pair fills a batch of two at every stage, so no call waits and none runs alone.
            ["Wuerstchen:Batching:MaxBatchImages"] = "2",
            ["Wuerstchen:Batching:MaxWait"] = "00:00:10",
        };
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false, settings: settings);
        var batcher = environment.Services.GetRequiredService<StageBatcher>();

        // A bulk job of one prompt is one batch of one item (the CPU's bulk batch holds 4), beside an HTTP generation.
        string job = HttpRequests.Json(new
        {
            jobId = "job-mixed", prompts = new[] { "a castle on a hill" },
            settings = new { width = 128, height = 256, priorSteps = 3, decoderSteps = 2, seed = 77 },
        });
        var intake = environment.Services.GetRequiredService<BulkJobIntake>();
        Assert.Equal(IntakeDisposition.Started, (await intake.AcceptAsync(environment.Client, job, "message-mixed", Token)).Disposition);
        string single = await StartAsync(environment, Request("a lighthouse at dusk", seed: 41, images: 1));
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(Token))
        {
            timeout.CancelAfter(TimeSpan.FromMinutes(3));
            var done = await environment.Client.WaitForInstanceCompletionAsync(BulkGenerateOrchestration.InstanceIdFor("job-mixed"), getInputsAndOutputs: true, timeout.Token);
            Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
            Assert.Equal(1, done.ReadOutputAs<BulkSummary>()!.Succeeded);
        }
        var http = await CompleteAsync(environment, single);
        Assert.Equal("Completed", http.Status);
        Assert.Equal((3L, 6L), batcher.Totals); // Stage C, B and A: one call of two images each

        // Two re-decodes of that generation (Stage B and A only) share their calls too, each with its own images.
        var redecodes = await Task.WhenAll(new[] { 99, 100 }.Select(async decoderSeed =>
        {
            var started = await environment.Http.Redecode(HttpRequests.Make("POST", $"/api/generations/{single}/redecode", HttpRequests.Json(new { decoderSeed })),
                environment.Client, single, Token);
            var accepted = Assert.IsType<AcceptedResult>(started);
            return await CompleteAsync(environment, Assert.IsType<StartedResponse>(accepted.Value).Id);
        }));
        Assert.All(redecodes, r => Assert.Equal("Completed", r.Status));
        Assert.Equal((5L, 10L), batcher.Totals);
        Assert.Equal([99UL, 100UL], redecodes.Select(r => r.Recipe!.Items[0].DecoderSeed!.Value));
        var pngs = new List<byte[]> { await PngAsync(environment, single, 0) };
        foreach (var r in redecodes)
            pngs.Add(await PngAsync(environment, r.Id, 0));
        Assert.Equal(3, pngs.Select(Convert.ToBase64String).Distinct().Count());
    }
}
