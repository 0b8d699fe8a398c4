using Microsoft.AspNetCore.Mvc;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using SixLabors.ImageSharp;
using Wuerstchen.Functions.Generation;
using Wuerstchen.Functions.Training;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Training;
using Wuerstchen.Workflows.Generation;
using Wuerstchen.Workflows.Training;

namespace Wuerstchen.Functions.Tests;

public sealed class FineTuneTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private const string Prefix = "datasets/shapes/";

    /// <summary>A fine-tune small enough for the CPU: 128-pixel effnet input (4×4 latents), a few steps, a 2×2 grid of 128² images.</summary>
    private static object Request(int totalSteps, int stepsPerChunk, string recipe = "diffusers", string? runId = null, double learningRate = 1e-3, object? extra = null) => new
    {
        dataset = new { prefix = Prefix },
        recipe,
        runId,
        totalSteps,
        stepsPerChunk,
        batchSize = 4,
        resolution = 128,
        learningRate,
        seed = 11,
        validationPrompts = new[] { "a red circle on a white background", "a blue square on a white background" },
        validationSeeds = new[] { 5, 6 },
        validationSize = 128,
        validationPriorSteps = 3,
        validationDecoderSteps = 2,
    };

    private static FineTuneHttpFunctions Http(TestEnvironment environment) =>
        new(environment.Services.GetRequiredService<FineTuneService>(), environment.Store, environment.Services.GetRequiredService<IOptions<ApiOptions>>());

    private static async Task<FineTuneStatusResponse> RunToEndAsync(TestEnvironment environment, object request)
    {
        var started = Assert.IsType<AcceptedResult>(await Http(environment).Start(HttpRequests.Make("POST", "/api/finetunes", HttpRequests.Json(request)), environment.Client, Token));
        string id = (string)started.Value!.GetType().GetProperty("id")!.GetValue(started.Value)!;
        return await WaitAsync(environment, id);
    }

    private static async Task<FineTuneStatusResponse> WaitAsync(TestEnvironment environment, string id)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Token);
        timeout.CancelAfter(TimeSpan.FromMinutes(10));
        await environment.Client.WaitForInstanceCompletionAsync(id, timeout.Token);
        var status = Assert.IsType<OkObjectResult>(await Http(environment).Get(HttpRequests.Make("GET", $"/api/finetunes/{id}"), environment.Client, id, Token));
        return Assert.IsType<FineTuneStatusResponse>(status.Value);
    }

    private static async Task<byte[]> GenerateAsync(TestEnvironment environment, string? priorModel)
    {
        string body = HttpRequests.Json(new { prompt = "a red circle on a white background", width = 128, height = 128, seed = 5, priorSteps = 3, decoderSteps = 2, priorModel });
        var started = await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", body, query: "?wait=60"), environment.Client, Token);
        var done = Assert.IsType<GenerationStatusResponse>(Assert.IsType<OkObjectResult>(started).Value);
        Assert.True(done.Status == "Completed", $"generation with {priorModel ?? "the base prior"}: {done.Status} {done.Error}");
        var image = Assert.IsType<FileStreamResult>(await environment.Http.GetImage(HttpRequests.Make("GET", $"/api/generations/{done.Id}/images/0"), environment.Client, done.Id, 0, Token));
        using var buffer = new MemoryStream();
        await image.FileStream.CopyToAsync(buffer, Token);
        return buffer.ToArray();
    }

    [Fact]
    public async Task ATinyPriorFineTunesOnColouredShapesItsLossFallsAndGenerationCanNameTheNewVersion()
    {
        await using var environment = await TestEnvironment.StartAsync();
        await ShapesDataset.WritePairsAsync(environment.Store, Prefix, Token);

        var status = await RunToEndAsync(environment, Request(totalSteps: 40, stepsPerChunk: 20));

        Assert.True(status.Status == "Completed", $"{status.Status}: {status.Error}");
        var log = await LossLog.ReadAsync(environment.Store, status.RunId!, Token);
        Assert.Equal(Enumerable.Range(0, 41), log.Select(p => p.Step));
        var evaluations = log.Where(p => p.EvalLoss is not null).ToArray();
        Assert.Equal([0, 20, 40], evaluations.Select(p => p.Step));
        TestContext.Current.TestOutputHelper?.WriteLine("evaluation loss: " + string.Join(", ", evaluations.Select(p => $"{p.Step}: {p.EvalLoss:F5}")) +
            "; training loss: " + string.Join(" ", log.Skip(1).Select(p => p.Loss!.Value.ToString("F3", System.Globalization.CultureInfo.InvariantCulture))));
        Assert.True(evaluations[2].EvalLoss < evaluations[1].EvalLoss && evaluations[1].EvalLoss < evaluations[0].EvalLoss,
            $"the evaluation loss did not fall: {string.Join(" → ", evaluations.Select(p => p.EvalLoss))}");
        double first = log.Skip(1).Take(20).Average(p => p.Loss!.Value), last = log.TakeLast(20).Average(p => p.Loss!.Value);
        Assert.True(last < first, $"the training loss did not fall: {first:F4} over the first twenty steps, {last:F4} over the last twenty");

        // The status names the step, the checkpoints kept, the dataset and the published model.
        Assert.Equal((40, 40, 8), (status.Step, status.TotalSteps, status.DatasetItems));
        Assert.Empty(status.DatasetProblems);
        Assert.Equal([40, 20], status.Checkpoints.Select(c => c.Step));
        Assert.All(status.Checkpoints, c => Assert.True(c.Complete));
        Assert.Equal($"finetuned/{status.RunId}", status.Model);
        Assert.EndsWith("/grid", status.GridUrl);

        // The grid: an EMA row over a raw row, one 128² column per validation prompt.
        var grid = Assert.IsType<FileStreamResult>(await Http(environment).GetGrid(HttpRequests.Make("GET", $"/api/finetunes/{status.Id}/grid"), environment.Client, status.Id, Token));
        using (var image = await Image.LoadAsync(grid.FileStream, Token))
            Assert.Equal((256, 256), (image.Width, image.Height));

        var models = Assert.IsType<ModelListResponse>(Assert.IsType<OkObjectResult>(await Http(environment).ListModels(HttpRequests.Make("GET", "/api/models"), Token)).Value);
        var version = Assert.Single(models.Models);
        Assert.Equal((status.Model, $"finetuned/{status.RunId}/raw", 8, 40, "diffusers"), (version.Name, version.RawName, version.DatasetItems, version.Steps, version.Recipe));

        // A generation naming the new version (EMA or raw) runs, and differs from the base model's image of the same seed.
        byte[] baseImage = await GenerateAsync(environment, null);
        byte[] tuned = await GenerateAsync(environment, version.Name);
        byte[] raw = await GenerateAsync(environment, version.RawName);
        Assert.NotEqual(baseImage, tuned);
        Assert.NotEqual(tuned, raw);
        Assert.True(Directory.Exists(Path.Combine(environment.Services.GetRequiredService<IOptions<Pipeline.Models.ModelOptions>>().Value.Root, "finetuned", status.RunId!, "ema")));
    }
}
