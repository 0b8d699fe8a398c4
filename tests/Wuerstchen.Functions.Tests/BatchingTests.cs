using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.DependencyInjection;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Wuerstchen.Functions.Generation;
using Wuerstchen.Models.Imaging;
using Wuerstchen.Models.Pipelines;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Generation.Batching;
using Wuerstchen.Pipeline.Storage;
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
            AcceptedResult accepted => (string)accepted.Value!.GetType().GetProperty("id")!.GetValue(accepted.Value)!,
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
}
