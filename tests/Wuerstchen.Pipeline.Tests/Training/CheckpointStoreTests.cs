using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;
using Wuerstchen.Models.Tests;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Pipeline.Training;
using static TorchSharp.torch;

namespace Wuerstchen.Pipeline.Tests.Training;

public sealed class CheckpointStoreTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static TrainingState State(int step) => new()
    {
        RunId = "run",
        Step = step,
        SchedulePosition = step,
        LearningRate = 1e-4,
        Epoch = 1,
        Cursor = 2,
        Permutation = [1, 0, 2],
        NoiseRng = "AA==",
        DataRng = "AQ==",
        DropoutRng = "Ag==",
        EmaUpdates = step,
        DatasetVersion = "v",
        ItemCount = 3,
        RecipeHash = "r",
    };

    private static async Task SaveAsync(CheckpointStore store, int step)
    {
        // No dispose scope here: scopes belong to a thread, and the await may resume on another.
        using var weight = full(3, (float)step);
        using var moment = zeros(3);
        var weights = new Dictionary<string, Tensor> { ["w"] = weight };
        await store.SaveAsync("run", step, weights, weights, new Dictionary<string, Tensor> { ["exp_avg.w"] = moment }, State(step), Token);
    }

    [Fact]
    public async Task TheNewestCheckpointThatVerifiesIsLoadedAndNewerBadOnesAreNamed()
    {
        using var folder = new TempDirectory();
        var blobs = new FileSystemBlobStore(folder.Path);
        var store = new CheckpointStore(blobs, NullLogger<CheckpointStore>.Instance);
        foreach (int step in new[] { 10, 20, 30, 40 })
            await SaveAsync(store, step);

        await blobs.DeleteAsync(TrainingBlobs.Checkpoint("run", 40) + CheckpointStore.ManifestFile, Token);
        await blobs.WriteAsync(TrainingBlobs.Checkpoint("run", 30) + CheckpointStore.EmaFile, new MemoryStream([1, 2, 3]), cancellationToken: Token);
        await blobs.DeleteAsync(TrainingBlobs.Checkpoint("run", 20) + CheckpointStore.StateFile, Token);

        var lookup = await store.LoadLatestAsync("run", Token);
        using var checkpoint = lookup.Checkpoint;
        Assert.Equal(10, checkpoint!.Step);
        Assert.Equal(10f, checkpoint.Raw["w"][0].item<float>());
        Assert.Equal([1, 0, 2], checkpoint.State.Permutation);
        Assert.Equal([40, 30, 20], lookup.Skipped.Select(s => s.Step));
        Assert.Contains("no manifest", lookup.Skipped[0].Reason);
        Assert.Contains("ema.safetensors fails its checksum", lookup.Skipped[1].Reason);
        Assert.Contains("state.json is missing", lookup.Skipped[2].Reason);
    }

    [Fact]
    public async Task PruningKeepsTheNewestCompleteCheckpoints()
    {
        using var folder = new TempDirectory();
        var blobs = new FileSystemBlobStore(folder.Path);
        var store = new CheckpointStore(blobs, NullLogger<CheckpointStore>.Instance);
        foreach (int step in new[] { 1, 2, 3, 4 })
            await SaveAsync(store, step);
        await blobs.DeleteAsync(TrainingBlobs.Checkpoint("run", 4) + CheckpointStore.ManifestFile, Token);

        await store.PruneAsync("run", keep: 2, Token);

        // Step 4 is incomplete, so the two newest complete ones are 3 and 2; step 1 goes.
        Assert.Equal([(4, false), (3, true), (2, true)], (await store.ListAsync("run", Token)).Select(c => (c.Step, c.Complete)));
    }
}
