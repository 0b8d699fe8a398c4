using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Wuerstchen.Functions.Training;
using Wuerstchen.Models.Imaging;
using Wuerstchen.Models.IO;
using Wuerstchen.Models.Tests;
using Wuerstchen.Pipeline.Models;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Pipeline.Training;

namespace Wuerstchen.Functions.Tests;

/// <summary>Extending, racing and following fine-tunes: revisions, simultaneous starts, progress inside a chunk, short runs.</summary>
public sealed partial class FineTuneTests
{
    [Fact]
    public async Task ExtendingAFinishedRunPublishesANewRevisionThatTheNextGenerationUsesWhileTheOldRevisionStaysAsItWas()
    {
        var guard = new RevisionGuard();
        await using var environment = await TestEnvironment.StartAsync(configure: services =>
            services.AddSingleton<IBlobStore>(provider => guard.Wrap(BlobStoreFactory.Create(provider.GetRequiredService<IOptions<StorageOptions>>().Value))));
        await ShapesDataset.WritePairsAsync(environment.Store, Prefix, Token);

        var first = await RunToEndAsync(environment, Request(totalSteps: 2, stepsPerChunk: 2, runId: "grow"));
        Assert.True(first.Status == "Completed", first.Error);
        byte[] before = await GenerateAsync(environment, "finetuned/grow");

        // The same request with more steps extends the run: it resumes from step 2 and publishes a new revision.
        var extended = await RunToEndAsync(environment, Request(totalSteps: 4, stepsPerChunk: 2, runId: "grow"));
        Assert.True(extended.Status == "Completed", extended.Error);
        Assert.Equal(2, extended.ResumedFrom);
        Assert.NotEqual(first.Revision, extended.Revision);
        Assert.Equal($"finetuned/grow/{extended.Revision}", extended.RevisionModel);

        // finetuned/grow now means the new revision: new images (not the cached ones of the old weights), whose recipe
        // names the revision that made them; the old revision, named as such, still makes the old images.
        byte[] after = await GenerateAsync(environment, "finetuned/grow");
        Assert.NotEqual(before, after);
        Assert.Equal(extended.RevisionModel, PngImages.ReadRecipe(new MemoryStream(after))!.PriorModel);
        Assert.Equal(first.RevisionModel, PngImages.ReadRecipe(new MemoryStream(before))!.PriorModel);
        Assert.Equal(before, await GenerateAsync(environment, first.RevisionModel));

        var listed = Assert.Single(Assert.IsType<ModelListResponse>(Assert.IsType<OkObjectResult>(await Http(environment).ListModels(HttpRequests.Make("GET", "/api/models"), Token)).Value).Models);
        Assert.Equal(("finetuned/grow", extended.Revision, 4), (listed.Name, listed.Revision, listed.Steps));
        Assert.Equal([extended.Revision, first.Revision], listed.Revisions.Select(r => r.Revision));
        Assert.Equal([4, 2], listed.Revisions.Select(r => r.Steps));

        // Starting the finished run again publishes nothing new: the same weights are the same revision.
        var again = await RunToEndAsync(environment, Request(totalSteps: 4, stepsPerChunk: 2, runId: "grow"));
        Assert.Equal(extended.Revision, again.Revision);
        Assert.True(guard.RevisionWrites > 0);
        Assert.Empty(guard.Violations);
    }

    /// <summary>A start's answer as the client reads it (JSON, web naming).</summary>

    [Fact]
    public async Task TenSimultaneousStartsOfOneFineTuneRunItOnceAndTellEveryCallerTheTruth()
    {
        var steps = new StepLog();
        var gate = new Gate(atStep: 3);
        await using var environment = await TestEnvironment.StartAsync(configure: services =>
        {
            services.AddSingleton<ITrainingStepObserver>(steps);
            services.AddSingleton<ITrainingStepObserver>(gate);
        });
        await ShapesDataset.WritePairsAsync(environment.Store, Prefix, Token);
        string body = HttpRequests.Json(Request(totalSteps: 4, stepsPerChunk: 2, runId: "crowd"));

        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var starts = Enumerable.Range(0, 10).Select(async _ =>
        {
            await go.Task;
            return await Http(environment).Start(HttpRequests.Make("POST", "/api/finetunes", body), environment.Client, Token);
        }).ToArray();
        go.SetResult();
        var answers = await Task.WhenAll(starts);

        var accepted = answers.Select(a => Assert.IsType<AcceptedResult>(a)).ToArray();
        Assert.All(accepted, a => Assert.Equal("crowd", Assert.IsType<StartedResponse>(a.Value).Id));
        var existing = accepted.Select(a => Assert.IsType<StartedResponse>(a.Value).Existing).ToArray();
        Assert.Equal(1, existing.Count(e => !e)); // one caller started it; the nine others were told it already runs

        // A client that retries (its first call timed out) while the run trains is attached to it, and the run goes on.
        await gate.Reached.WaitAsync(Token);
        var retried = Assert.IsType<AcceptedResult>(await Http(environment).Start(HttpRequests.Make("POST", "/api/finetunes", body), environment.Client, Token));
        Assert.True(Assert.IsType<StartedResponse>(retried.Value).Existing);
        gate.Open();

        var done = await WaitAsync(environment, "crowd");
        Assert.True(done.Status == "Completed", $"{done.Status}: {done.Error}");
        Assert.Equal([1, 2, 3, 4], steps.Of("crowd")); // one orchestration trained each step once, uninterrupted
        var lease = await FineTuneRuns.ReadLeaseAsync(environment.Store, "crowd", Token);
        var instance = await environment.Client.GetInstanceAsync("crowd", getInputsAndOutputs: true, Token);
        Assert.Equal(instance!.ReadInputAs<Workflows.Training.FineTuneInput>()!.StartId, lease!.StartId);
    }

    [Fact]
    public async Task AChunkReportsItsStepLossRateSpeedAndEtaToTheStatusAndTheLossLogWhileItRuns()
    {
        var gate = new Gate(atStep: 3);
        await using var environment = await TestEnvironment.StartAsync(
            settings: new Dictionary<string, string?>
            {
                ["Wuerstchen:Training:ProgressInterval"] = "00:00:00.050",
                ["Wuerstchen:Training:LossLogInterval"] = "00:00:00.050",
            },
            configure: services => services.AddSingleton<ITrainingStepObserver>(gate));
        await ShapesDataset.WritePairsAsync(environment.Store, Prefix, Token);
        var http = Http(environment);
        Assert.IsType<AcceptedResult>(await http.Start(HttpRequests.Make("POST", "/api/finetunes", HttpRequests.Json(Request(totalSteps: 6, stepsPerChunk: 6, runId: "live"))), environment.Client, Token));
        await gate.Reached.WaitAsync(Token);

        // Held at step 3 of a six-step chunk: no checkpoint yet, but the status and the loss log show step 3.
        var running = await PollStatusAsync(environment, "live", s => s.Step == 3 && s.RecentLoss.Count > 0 && s.RecentLoss[^1].Step == 3);
        var log = await LossLog.ReadAsync(environment.Store, "live", Token);

        Assert.Equal(("Running", "Training", 3, 6), (running.Status, running.Phase, running.Step, running.TotalSteps));
        Assert.Empty(running.Checkpoints);
        var progress = running.Progress!;
        Assert.Equal((TrainingProgress.Training, 3, 6), (progress.Phase, progress.Step, progress.TotalSteps));
        Assert.True(progress.Loss > 0 && progress.LearningRate > 0, $"loss {progress.Loss}, rate {progress.LearningRate}");
        Assert.True(progress.StepsPerSecond > 0 && progress.EtaSeconds > 0, $"{progress.StepsPerSecond} steps/s, ETA {progress.EtaSeconds} s");
        Assert.Equal(progress.Loss, running.Loss);
        Assert.Equal([0, 1, 2, 3], log.Select(p => p.Step));
        Assert.Equal(running.RecentLoss.Select(p => p.Step), log.Select(p => p.Step));

        gate.Open();
        var done = await WaitAsync(environment, "live");
        Assert.Equal(("Completed", 6), (done.Status, done.Step));
        Assert.Null(done.Progress);
        Assert.Equal(Enumerable.Range(0, 7), (await LossLog.ReadAsync(environment.Store, "live", Token)).Select(p => p.Step));
    }

    [Fact]
    public async Task AShortBlogRunScalesItsWarmUpAndEmaToTheRunSoItsEmaWeightsAreNotTheBasePriors()
    {
        await using var environment = await TestEnvironment.StartAsync();
        await ShapesDataset.WritePairsAsync(environment.Store, Prefix, Token);
        var request = new
        {
            dataset = new { prefix = Prefix },
            recipe = "blog",
            runId = "short-blog",
            totalSteps = 10,
            batchSize = 2,
            resolution = 128,
            learningRate = 1e-3,
            validationPrompts = new[] { "a red circle" },
            validationSeeds = new[] { 1 },
            validationSize = 128,
            validationPriorSteps = 2,
            validationDecoderSteps = 2,
        };
        var status = await RunToEndAsync(environment, request);
        Assert.True(status.Status == "Completed", status.Error);
        var run = await FineTuneRuns.ReadAsync(environment.Store, "short-blog", Token);
        Assert.Equal((2, 1), (run.Recipe.WarmupSteps, run.Recipe.EmaUpdateEvery)); // 1,000 and 100 of the blog's 5,000 steps, scaled to 10

        // The published EMA weights moved away from the base prior's.
        string published = FineTunedModels.FileBlob("short-blog", status.Revision!, $"{FineTunedModels.EmaFolder}/{FineTunedModels.WeightsFile}");
        Dictionary<string, TorchSharp.torch.Tensor> ema;
        await using (var stream = await environment.Store.OpenReadAsync(published, Token))
            ema = SafetensorsFile.ReadAll(stream, published).Tensors;
        var (basePrior, _) = SafetensorsFile.ReadAll(File.OpenRead(ParityFixtures.PathOf("models/prior-pipeline/prior/diffusion_pytorch_model.safetensors")), "base prior");
        int changed = ema.Count(t => !t.Value.bytes.SequenceEqual(basePrior[t.Key].bytes));
        TestContext.Current.TestOutputHelper?.WriteLine($"{changed} of {ema.Count} EMA tensors differ from the base prior's");
        Assert.True(changed > ema.Count / 2, $"only {changed} of {ema.Count} EMA tensors differ from the base prior's");
        foreach (var tensor in ema.Values.Concat(basePrior.Values))
            tensor.Dispose();

        // The same request with more steps extends the run with the warm-up and EMA interval it was created with
        // (scaled to 20 steps they would be 4 and 2: another recipe, which would be refused).
        var extended = await RunToEndAsync(environment, request with { totalSteps = 20 });
        Assert.True(extended.Status == "Completed", extended.Error);
        var kept = (await FineTuneRuns.ReadAsync(environment.Store, "short-blog", Token)).Recipe;
        Assert.Equal((20, 2, 1), (extended.Step, kept.WarmupSteps, kept.EmaUpdateEvery));
    }

    /// <summary>Records every training step each run takes.</summary>
    private sealed class StepLog : ITrainingStepObserver
    {
        private readonly ConcurrentQueue<(string RunId, int Step)> _steps = new();

        public int[] Of(string runId) => _steps.Where(s => s.RunId == runId).Select(s => s.Step).ToArray();

        public void AfterStep(string runId, int step, CancellationToken cancellationToken) => _steps.Enqueue((runId, step));
    }

    /// <summary>
    /// A store that fails the test's expectations, not the writes: it records any write over an existing blob of a
    /// published revision (revisions are immutable) and any pointer to a revision whose description is not yet there.
    /// </summary>
    private sealed class RevisionGuard
    {
        private readonly ConcurrentQueue<string> _violations = new();
        private int _revisionWrites;

        public IReadOnlyCollection<string> Violations => _violations;

        public int RevisionWrites => _revisionWrites;

        public IBlobStore Wrap(IBlobStore inner) => new Store(inner, this);

        private sealed class Store(IBlobStore inner, RevisionGuard guard) : IBlobStore
        {
            public string Description => inner.Description;

            public Task<bool> ExistsAsync(string name, CancellationToken cancellationToken = default) => inner.ExistsAsync(name, cancellationToken);

            public Task<BlobItemInfo?> GetInfoAsync(string name, CancellationToken cancellationToken = default) => inner.GetInfoAsync(name, cancellationToken);

            public async Task WriteAsync(string name, Stream content, BlobWriteOptions? options = null, CancellationToken cancellationToken = default)
            {
                string[] parts = name.Split('/');
                if (parts is ["models", _, "revisions", ..])
                {
                    Interlocked.Increment(ref guard._revisionWrites);
                    if (await inner.ExistsAsync(name, cancellationToken))
                        guard._violations.Enqueue($"rewrote {name}");
                }
                if (parts is ["models", var id, "latest.json"])
                {
                    var buffer = new MemoryStream();
                    await content.CopyToAsync(buffer, cancellationToken);
                    buffer.Position = 0;
                    string revision = JsonDocument.Parse(buffer.ToArray()).RootElement.GetProperty("revision").GetString()!;
                    if (!await inner.ExistsAsync(FineTunedModels.VersionBlob(id, revision), cancellationToken))
                        guard._violations.Enqueue($"pointed {name} at {revision} before its version.json");
                    content = buffer;
                }
                await inner.WriteAsync(name, content, options, cancellationToken);
            }

            public Task<Stream> OpenReadAsync(string name, CancellationToken cancellationToken = default) => inner.OpenReadAsync(name, cancellationToken);

            public Task<bool> DeleteAsync(string name, CancellationToken cancellationToken = default) => inner.DeleteAsync(name, cancellationToken);

            public async IAsyncEnumerable<BlobItemInfo> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
            {
                await foreach (var item in inner.ListAsync(prefix, cancellationToken))
                    yield return item;
            }

            public Task<Uri?> GetReadUriAsync(string name, TimeSpan lifetime, CancellationToken cancellationToken = default) => inner.GetReadUriAsync(name, lifetime, cancellationToken);
        }
    }
}
