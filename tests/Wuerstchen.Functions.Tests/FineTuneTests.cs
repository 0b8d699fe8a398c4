using Microsoft.AspNetCore.Mvc;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using SixLabors.ImageSharp;
using Wuerstchen.Functions.Generation;
using Wuerstchen.Functions.Training;
using Wuerstchen.Models.Tests;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Training;
using Wuerstchen.Workflows.Generation;
using Wuerstchen.Workflows.Training;

namespace Wuerstchen.Functions.Tests;

public sealed partial class FineTuneTests
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
        environment.FineTunes;

    private static async Task<FineTuneStatusResponse> RunToEndAsync(TestEnvironment environment, object request)
    {
        var started = Assert.IsType<AcceptedResult>(await Http(environment).Start(HttpRequests.Make("POST", "/api/finetunes", HttpRequests.Json(request)), environment.Client, Token));
        string id = (string)started.Value!.GetType().GetProperty("Id")!.GetValue(started.Value)!;
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

    /// <summary>Reads the status until <paramref name="until"/> holds (progress is written in the background) or a minute has passed.</summary>
    private static async Task<FineTuneStatusResponse> PollStatusAsync(TestEnvironment environment, string id, Func<FineTuneStatusResponse, bool> until)
    {
        var deadline = DateTimeOffset.UtcNow.AddMinutes(1);
        while (true)
        {
            var status = Assert.IsType<FineTuneStatusResponse>(Assert.IsType<OkObjectResult>(await Http(environment).Get(HttpRequests.Make("GET", $"/api/finetunes/{id}"), environment.Client, id, Token)).Value);
            if (until(status) || DateTimeOffset.UtcNow > deadline)
                return status;
            await Task.Delay(50, Token);
        }
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
        string materialised = environment.Services.GetRequiredService<Pipeline.Models.FineTunedModels>().LocalFolder(status.RunId!, version.Revision, raw: false);
        Assert.True(Directory.Exists(materialised), $"{materialised} was not materialised");
        Assert.StartsWith(environment.Services.GetRequiredService<IOptions<Pipeline.Models.ModelOptions>>().Value.CacheRoot!, materialised);
    }

    /// <summary>The blog's recipe with every random path in use: caption dropout, model dropout, accumulation, warm-up, EMA.</summary>
    private static object BusyRequest(string runId, int totalSteps, int stepsPerChunk = 3) => new
    {
        dataset = new { prefix = Prefix },
        recipe = "blog",
        runId,
        totalSteps,
        stepsPerChunk,
        batchSize = 3,
        gradientAccumulation = 2,
        warmupSteps = 3,
        emaUpdateEvery = 2,
        captionDropout = 0.5,
        resolution = 128,
        learningRate = 1e-3,
        seed = 23,
        validationPrompts = new[] { "a green circle on a white background" },
        validationSeeds = new[] { 1 },
        validationSize = 128,
        validationPriorSteps = 2,
        validationDecoderSteps = 2,
    };

    [Fact]
    public async Task ARunKilledMidChunkResumesFromItsCheckpointToBitwiseTheSameWeights()
    {
        var killer = new KillOnce(runId: "killed", step: 5);
        await using var environment = await TestEnvironment.StartAsync(configure: services => services.AddSingleton<ITrainingStepObserver>(killer));
        await ShapesDataset.WritePairsAsync(environment.Store, Prefix, Token);

        // The reference trains all six steps in one chunk, never reading a checkpoint back; the other run trains
        // chunks of three and dies after step 5, so its second chunk restarts from step 3's checkpoint.
        var straight = await RunToEndAsync(environment, BusyRequest("straight", totalSteps: 6, stepsPerChunk: 6));
        var killed = await RunToEndAsync(environment, BusyRequest("killed", totalSteps: 6));

        Assert.True(straight.Status == "Completed", straight.Error);
        Assert.True(killed.Status == "Completed", killed.Error);
        Assert.Equal(1, killer.Kills); // step 5 died once (no checkpoint after step 3's); the retried chunk resumed from step 3
        await AssertSameFinalCheckpointAsync(environment, "straight", "killed", 6);
        var log = await LossLog.ReadAsync(environment.Store, "killed", Token);
        Assert.Equal(Enumerable.Range(0, 7), log.Select(p => p.Step));
        Assert.Equal((await LossLog.ReadAsync(environment.Store, "straight", Token)).Select(p => p.Loss), log.Select(p => p.Loss));
        Assert.Equal([6], straight.Checkpoints.Select(c => c.Step));
        Assert.Equal([6, 3], killed.Checkpoints.Select(c => c.Step));
    }

    [Fact]
    public async Task ACorruptOrPartialCheckpointIsSkippedAndTheRunResumesFromTheLastGoodOne()
    {
        await using var environment = await TestEnvironment.StartAsync();
        await ShapesDataset.WritePairsAsync(environment.Store, Prefix, Token);
        var first = await RunToEndAsync(environment, BusyRequest("damaged", totalSteps: 9));
        Assert.True(first.Status == "Completed", first.Error);
        Assert.Equal([9, 6, 3], first.Checkpoints.Select(c => c.Step));
        var checkpoints = environment.Services.GetRequiredService<CheckpointStore>();
        var (original, _) = await checkpoints.TryLoadAsync("damaged", 9, Token);
        using var expected = original!;

        // Step 9 never got its manifest (as if the writer died); one byte of step 6's raw weights flipped.
        await environment.Store.DeleteAsync(TrainingBlobs.Checkpoint("damaged", 9) + CheckpointStore.ManifestFile, Token);
        string victim = TrainingBlobs.Checkpoint("damaged", 6) + CheckpointStore.RawFile;
        byte[] bytes;
        await using (var stream = await environment.Store.OpenReadAsync(victim, Token))
        {
            using var buffer = new MemoryStream();
            await stream.CopyToAsync(buffer, Token);
            bytes = buffer.ToArray();
        }
        bytes[^100] ^= 0x40;
        await environment.Store.WriteAsync(victim, new MemoryStream(bytes), cancellationToken: Token);

        // Starting the same run again resumes it from the newest checkpoint that verifies.
        var resumed = await RunToEndAsync(environment, BusyRequest("damaged", totalSteps: 9));
        Assert.True(resumed.Status == "Completed", resumed.Error);
        Assert.Equal(3, resumed.ResumedFrom);
        Assert.Equal([9, 6], resumed.SkippedCheckpoints.Select(s => s.Step));
        Assert.Contains("no manifest", resumed.SkippedCheckpoints[0].Reason);
        Assert.Contains("raw.safetensors fails its checksum", resumed.SkippedCheckpoints[1].Reason);
        var (again, reason) = await checkpoints.TryLoadAsync("damaged", 9, Token);
        Assert.True(again is not null, reason);
        using (again)
            AssertSameCheckpoint(expected, again);
        Assert.Equal(Enumerable.Range(0, 10), (await LossLog.ReadAsync(environment.Store, "damaged", Token)).Select(p => p.Step));
    }

    private static async Task AssertSameFinalCheckpointAsync(TestEnvironment environment, string expectedRun, string actualRun, int step)
    {
        var checkpoints = environment.Services.GetRequiredService<CheckpointStore>();
        var (expected, expectedReason) = await checkpoints.TryLoadAsync(expectedRun, step, Token);
        var (actual, actualReason) = await checkpoints.TryLoadAsync(actualRun, step, Token);
        Assert.True(expected is not null, expectedReason);
        Assert.True(actual is not null, actualReason);
        using (expected)
        using (actual)
            AssertSameCheckpoint(expected, actual);
    }

    /// <summary>Bit for bit: raw and EMA weights, AdamW's moments and steps, the random streams and the data order.</summary>
    private static void AssertSameCheckpoint(LoadedCheckpoint expected, LoadedCheckpoint actual)
    {
        foreach (var (part, a, b) in new[] { ("raw", expected.Raw, actual.Raw), ("ema", expected.Ema, actual.Ema), ("optimizer", expected.Optimizer, actual.Optimizer) })
        {
            Assert.Equal(a.Keys.Order(StringComparer.Ordinal), b.Keys.Order(StringComparer.Ordinal));
            foreach (var (name, tensor) in a)
            {
                Assert.True(tensor.bytes.SequenceEqual(b[name].bytes), $"{part} tensor {name} differs");
            }
        }
        // The recipe's chunk size may differ (that is the point of the comparison); what it trains may not.
        Assert.Equal(expected.State.Recipe!.Hash(), actual.State.Recipe!.Hash());
        Assert.Equal(expected.State with { RunId = "", Recipe = null }, actual.State with { RunId = "", Recipe = null }, new StateComparer());
    }

    private sealed class StateComparer : IEqualityComparer<TrainingState>
    {
        public bool Equals(TrainingState? x, TrainingState? y) =>
            System.Text.Json.JsonSerializer.Serialize(x) == System.Text.Json.JsonSerializer.Serialize(y);

        public int GetHashCode(TrainingState obj) => 0;
    }

    /// <summary>Stops one run once at a step, as a crash or a host shutdown (which cancels the activity) would.</summary>
    private sealed class KillOnce(string runId, int step) : ITrainingStepObserver
    {
        private int _kills;

        public int Kills => _kills;

        public void AfterStep(string run, int current, CancellationToken cancellationToken)
        {
            if (run == runId && current == step && Interlocked.CompareExchange(ref _kills, 1, 0) == 0)
                throw new OperationCanceledException($"Simulated shutdown of the host during step {step} of run {run}.");
        }
    }

    [Fact]
    public async Task ACancelledRunStopsAtItsNextStepAndStartingItAgainResumesFromItsLastCheckpoint()
    {
        var gate = new Gate(atStep: 3);
        await using var environment = await TestEnvironment.StartAsync(configure: services => services.AddSingleton<ITrainingStepObserver>(gate));
        await ShapesDataset.WritePairsAsync(environment.Store, Prefix, Token);
        var request = Request(totalSteps: 4, stepsPerChunk: 2, runId: "cancelled");
        var http = Http(environment);
        Assert.IsType<AcceptedResult>(await http.Start(HttpRequests.Make("POST", "/api/finetunes", HttpRequests.Json(request)), environment.Client, Token));
        await gate.Reached.WaitAsync(Token);

        // Held after step 3: the status shows the step inside the chunk, and the checkpoint of the first chunk.
        var running = await PollStatusAsync(environment, "cancelled", s => s.Step == 3);
        Assert.Equal(("Running", 3, 4), (running.Status, running.Step, running.TotalSteps));
        Assert.Equal([2], running.Checkpoints.Select(c => c.Step));
        Assert.NotNull(running.GridUrl);
        Assert.Equal(202, HttpRequests.StatusOf(await http.Cancel(HttpRequests.Make("DELETE", "/api/finetunes/cancelled"), environment.Client, "cancelled", Token)));
        gate.Open(); // the held activity goes on, finds its lease gone at its next step and stops without a checkpoint
        var cancelled = await WaitAsync(environment, "cancelled");
        Assert.Equal("Terminated", cancelled.Status);
        Assert.Equal(409, HttpRequests.StatusOf(await http.Cancel(HttpRequests.Make("DELETE", "/api/finetunes/cancelled"), environment.Client, "cancelled", Token)));

        // The same request again (same run id) resumes from step 2; a different recipe under that id is refused.
        var restarted = await RunToEndAsync(environment, request);
        Assert.True(restarted.Status == "Completed", restarted.Error);
        Assert.Equal(2, restarted.ResumedFrom);
        Assert.Equal([4, 2], restarted.Checkpoints.Select(c => c.Step));
        var other = await http.Start(HttpRequests.Make("POST", "/api/finetunes", HttpRequests.Json(Request(totalSteps: 4, stepsPerChunk: 2, runId: "cancelled", learningRate: 5e-4))), environment.Client, Token);
        Assert.Equal(409, HttpRequests.StatusOf(other));
    }

    [Fact]
    public async Task InvalidFineTuneRequestsAreAnsweredWithEveryBadFieldNamed()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false);
        string body = HttpRequests.Json(new
        {
            dataset = new { prefix = "../up", folder = "x" },
            recipe = "mine",
            runId = "Not Valid",
            basePrior = "someone/unknown",
            totalSteps = 0,
            batchSize = 0,
            learningRate = -1,
            resolution = 100,
            precision = "int8",
            noiseLevels = "loud",
            validationPrompts = new[] { "a", "b" },
            validationSeeds = new[] { 1 },
            validationSize = 100,
        });
        var result = await Http(environment).Start(HttpRequests.Make("POST", "/api/finetunes", body), environment.Client, Token);
        var problem = Assert.IsType<ValidationProblemDetails>(Assert.IsType<BadRequestObjectResult>(result).Value);
        Assert.Equal(["basePrior", "batchSize", "dataset", "learningRate", "noiseLevels", "precision", "recipe", "resolution", "runId", "totalSteps", "validationSeeds", "validationSize"],
            problem.Errors.Keys.Order(StringComparer.Ordinal));

        var folder = await Http(environment).Start(HttpRequests.Make("POST", "/api/finetunes", HttpRequests.Json(new { dataset = new { folder = "anywhere" } })), environment.Client, Token);
        Assert.Contains("DatasetsRoot", Assert.IsType<ValidationProblemDetails>(Assert.IsType<BadRequestObjectResult>(folder).Value).Errors["dataset.folder"][0]);
        var unknownField = await Http(environment).Start(HttpRequests.Make("POST", "/api/finetunes", "{\"dataset\": {\"prefix\": \"d/\"}, \"epochs\": 3}"), environment.Client, Token);
        Assert.Contains("epochs", Assert.IsType<ValidationProblemDetails>(Assert.IsType<BadRequestObjectResult>(unknownField).Value).Errors.Single().Value[0]);
        Assert.Equal(404, HttpRequests.StatusOf(await Http(environment).Get(HttpRequests.Make("GET", "/api/finetunes/nope"), environment.Client, "nope", Token)));
        Assert.Equal(404, HttpRequests.StatusOf(await Http(environment).Cancel(HttpRequests.Make("DELETE", "/api/finetunes/nope"), environment.Client, "nope", Token)));
        Assert.Equal(404, HttpRequests.StatusOf(await Http(environment).GetGrid(HttpRequests.Make("GET", "/api/finetunes/nope/grid"), environment.Client, "nope", Token)));
        Assert.Empty(Assert.IsType<ModelListResponse>(Assert.IsType<OkObjectResult>(await Http(environment).ListModels(HttpRequests.Make("GET", "/api/models"), Token)).Value).Models);
    }

    [Fact]
    public async Task TheTimerStartsOnNewCaptionsRefusesDuplicatesAndRecordsWhyItSkips()
    {
        var gate = new Gate();
        const string scheduled = "Wuerstchen:Training:Scheduled:0:";
        var settings = new Dictionary<string, string?>
        {
            [scheduled + "Name"] = "shapes",
            [scheduled + "Request:Dataset:Prefix"] = Prefix,
            [scheduled + "Request:Recipe"] = "diffusers",
            [scheduled + "Request:TotalSteps"] = "2",
            [scheduled + "Request:BatchSize"] = "2",
            [scheduled + "Request:Resolution"] = "128",
            [scheduled + "Request:ValidationPrompts:0"] = "a red circle on a white background",
            [scheduled + "Request:ValidationSeeds:0"] = "1",
            [scheduled + "Request:ValidationSize"] = "128",
            [scheduled + "Request:ValidationPriorSteps"] = "2",
            [scheduled + "Request:ValidationDecoderSteps"] = "2",
        };
        await using var environment = await TestEnvironment.StartAsync(settings: settings, configure: services => services.AddSingleton<ITrainingStepObserver>(gate));
        await ShapesDataset.WritePairsAsync(environment.Store, Prefix, Token);
        var timer = environment.Services.GetRequiredService<FineTuneScheduler>();
        string instanceId = FineTuneScheduler.InstanceIdFor(new DatasetLocation { Prefix = Prefix }.Key());

        // No model of this dataset yet: the first tick starts a run under the dataset's singleton id.
        var first = Assert.Single(await timer.RunAsync(environment.Client, DateTimeOffset.UtcNow, Token));
        Assert.Equal((FineTuneScheduler.Started, instanceId), (first.Action, first.InstanceId));
        await gate.Reached.WaitAsync(Token);

        // While it runs (held at its first step), ticks — two of them at once — start nothing, and neither does the engine.
        var whileRunning = await Task.WhenAll(timer.RunAsync(environment.Client, DateTimeOffset.UtcNow, Token), timer.RunAsync(environment.Client, DateTimeOffset.UtcNow, Token));
        Assert.All(whileRunning.SelectMany(d => d), d => Assert.Equal(FineTuneScheduler.Skipped, d.Action));
        Assert.All(whileRunning.SelectMany(d => d), d => Assert.Contains("already running", d.Reason));
        var duplicate = await Assert.ThrowsAnyAsync<Exception>(() => environment.Client.ScheduleNewOrchestrationInstanceAsync(FineTuneOrchestration.Name,
            new FineTuneInput(first.RunId!, "duplicate", new()), new Microsoft.DurableTask.StartOrchestrationOptions(instanceId)
                .WithDedupeStatuses(OrchestrationRuntimeStatus.Pending, OrchestrationRuntimeStatus.Running), Token));
        Assert.True(FineTuneService.IsAlreadyRunning(duplicate), duplicate.ToString());
        gate.Open();
        var done = await environment.Client.WaitForInstanceCompletionAsync(instanceId, getInputsAndOutputs: true, Token);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
        Assert.Equal(first.RunId, done.ReadOutputAs<FineTuneResult>()!.VersionId);

        // Nothing changed since that model: skipped, with the reason.
        var unchanged = Assert.Single(await timer.RunAsync(environment.Client, DateTimeOffset.UtcNow, Token));
        Assert.Equal(FineTuneScheduler.Skipped, unchanged.Action);
        Assert.Contains($"unchanged: model version {first.RunId}", unchanged.Reason);

        // A caption changes: a new run (a new dataset version) starts under the same instance id, and its preparation
        // re-uses the cached latents and text embeddings of the seven items that did not change.
        Assert.Equal(8 + 1, await CountAsync(environment, "training/cache/"));
        await environment.Store.WriteAsync($"{Prefix}red-circle.txt", new MemoryStream("a crimson disc on a white background"u8.ToArray()), cancellationToken: Token);
        var changed = Assert.Single(await timer.RunAsync(environment.Client, DateTimeOffset.UtcNow, Token));
        Assert.Equal((FineTuneScheduler.Started, instanceId), (changed.Action, changed.InstanceId));
        Assert.NotEqual(first.RunId, changed.RunId);
        Assert.Contains("changed since model version", changed.Reason);
        var second = await environment.Client.WaitForInstanceCompletionAsync(instanceId, getInputsAndOutputs: true, Token);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, second.RuntimeStatus);
        Assert.Equal(9 + 1, await CountAsync(environment, "training/cache/"));
        Assert.Equal(FineTuneScheduler.Skipped, Assert.Single(await timer.RunAsync(environment.Client, DateTimeOffset.UtcNow, Token)).Action);

        var log = await timer.ReadLogAsync(Token);
        Assert.Equal(["started", "skipped", "skipped", "skipped", "started", "skipped"], log.Select(d => d.Action));
        Assert.All(log, d => Assert.Equal("shapes", d.Dataset));
        var versions = await environment.Services.GetRequiredService<FineTuneService>().ListModelsAsync(Token);
        Assert.Equal([changed.RunId, first.RunId], versions.Select(v => v.Latest.VersionId));
    }

    [Fact]
    public async Task BadDatasetItemsAreReportedByNameAndSkippedAndAllBadFailsTheRunWithTheReason()
    {
        using var datasets = new TempDirectory();
        string folder = Path.Combine(datasets.Path, "mixed");
        Directory.CreateDirectory(folder);
        var good = ShapesDataset.Items().Take(3).ToArray();
        foreach (var (stem, _, png) in good)
            await File.WriteAllBytesAsync(Path.Combine(folder, stem + ".png"), png, Token);
        byte[] noise = NoisePng(60);
        await File.WriteAllBytesAsync(Path.Combine(folder, "broken.png"), "this is not an image"u8.ToArray(), Token);
        await File.WriteAllBytesAsync(Path.Combine(folder, "truncated.png"), noise[..(noise.Length / 2)], Token);
        await File.WriteAllBytesAsync(Path.Combine(folder, "huge-pixels.png"), ShapesDataset.Png(new SixLabors.ImageSharp.PixelFormats.Rgb24(0, 0, 0), "square", 100), Token);
        await File.WriteAllBytesAsync(Path.Combine(folder, "huge-bytes.png"), noise, Token);
        await File.WriteAllBytesAsync(Path.Combine(folder, "uncaptioned.png"), good[0].Png, Token);
        await File.WriteAllBytesAsync(Path.Combine(folder, "empty-caption.png"), good[1].Png, Token);
        await File.WriteAllTextAsync(Path.Combine(folder, "notes.md"), "# shapes", Token);
        var lines = good.Select(g => HttpRequests.Json(new { file_name = g.Stem + ".png", text = g.Caption }))
            .Concat(new[] { "broken.png", "truncated.png", "huge-pixels.png", "huge-bytes.png" }.Select(f => HttpRequests.Json(new { file_name = f, text = "a shape" })))
            .Append(HttpRequests.Json(new { file_name = "empty-caption.png", text = "" }))
            .Append(HttpRequests.Json(new { file_name = "gone.png", text = "a shape that is not there" }))
            .Append("{\"file_name\": \"half a line")
            .Append(HttpRequests.Json(new { file_name = "notes.md", text = new[] { "a list", "of captions" } }));
        await File.WriteAllTextAsync(Path.Combine(folder, "metadata.jsonl"), string.Join("\n", lines) + "\n", Token);

        await using var environment = await TestEnvironment.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Wuerstchen:Training:DatasetsRoot"] = datasets.Path,
            ["Wuerstchen:Training:MaxImagePixels"] = "4096",
            ["Wuerstchen:Training:MaxImageBytes"] = (noise.Length - 1).ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        var request = new
        {
            dataset = new { folder = "mixed" },
            recipe = "diffusers",
            totalSteps = 1,
            resolution = 128,
            validationPrompts = new[] { "a shape" },
            validationSeeds = new[] { 1 },
            validationSize = 128,
            validationPriorSteps = 2,
            validationDecoderSteps = 2,
        };
        var status = await RunToEndAsync(environment, request);

        Assert.True(status.Status == "Completed", status.Error);
        Assert.Equal(3, status.DatasetItems);
        var problems = status.DatasetProblems.ToDictionary(p => p.Name, p => p.Reason);
        TestContext.Current.TestOutputHelper?.WriteLine(string.Join("\n", problems.Select(p => $"{p.Key}: {p.Value}")));
        Assert.StartsWith("undecodable", problems["broken.png"]);
        Assert.StartsWith("undecodable", problems["truncated.png"]);
        Assert.Contains("100×100 pixels", problems["huge-pixels.png"]);
        Assert.Contains($"{noise.Length} bytes", problems["huge-bytes.png"]);
        Assert.StartsWith("missing caption", problems["uncaptioned.png"]);
        Assert.StartsWith("missing caption", problems["empty-caption.png"]);
        Assert.Contains("gone.png is listed but not in the dataset", problems["metadata.jsonl:9"]);
        Assert.Contains("not valid JSON", problems["metadata.jsonl:10"]);
        Assert.Contains("not a string", problems["metadata.jsonl:11"]);
        Assert.StartsWith("ignored", problems["notes.md"]);
        Assert.Equal(10, problems.Count);

        // A dataset with nothing trainable fails the run, naming the report, instead of training on nothing.
        await environment.Store.WriteAsync("datasets/bad/a.png", new MemoryStream(good[0].Png), cancellationToken: Token);
        await environment.Store.WriteAsync("datasets/bad/b.txt", new MemoryStream("an orphan caption"u8.ToArray()), cancellationToken: Token);
        var failed = await RunToEndAsync(environment, new { dataset = new { prefix = "datasets/bad/" }, recipe = "diffusers", totalSteps = 1, resolution = 128 });
        Assert.Equal("Failed", failed.Status);
        Assert.Contains("no trainable items", failed.Error);
        Assert.Equal(["a.png", "b.txt"], failed.DatasetProblems.Select(p => p.Name));
        Assert.Contains("missing caption: no a.txt", failed.DatasetProblems[0].Reason);
        Assert.Contains("caption without an image", failed.DatasetProblems[1].Reason);
    }

    private static async Task<int> CountAsync(TestEnvironment environment, string prefix)
    {
        int count = 0;
        await foreach (var _ in environment.Store.ListAsync(prefix, Token))
            count++;
        return count;
    }

    private static byte[] NoisePng(int size)
    {
        var random = new Random(3);
        using var image = new Image<SixLabors.ImageSharp.PixelFormats.Rgb24>(size, size);
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
                image[x, y] = new SixLabors.ImageSharp.PixelFormats.Rgb24((byte)random.Next(256), (byte)random.Next(256), (byte)random.Next(256));
        using var output = new MemoryStream();
        image.SaveAsPng(output);
        return output.ToArray();
    }

    /// <summary>Holds every run at one step (the first by default) until opened.</summary>
    private sealed class Gate(int atStep = 0) : ITrainingStepObserver
    {
        private readonly TaskCompletionSource _reached = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly ManualResetEventSlim _open = new();

        public Task Reached => _reached.Task;

        public void Open() => _open.Set();

        public void AfterStep(string runId, int step, CancellationToken cancellationToken)
        {
            if (atStep != 0 && step != atStep)
                return;
            _reached.TrySetResult();
            _open.Wait(cancellationToken);
        }
    }
}
