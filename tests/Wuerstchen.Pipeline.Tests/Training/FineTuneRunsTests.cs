using Wuerstchen.Models.Tests;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Pipeline.Training;

namespace Wuerstchen.Pipeline.Tests.Training;

public sealed class FineTuneRunsTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static FineTuneRun Run(string effnet, int totalSteps = 10) => new()
    {
        RunId = "run",
        Dataset = new DatasetLocation { Prefix = "d/" },
        DatasetKey = new DatasetLocation { Prefix = "d/" }.Key(),
        Recipe = TrainingRecipe.DiffusersRecipe with { TotalSteps = totalSteps },
        EffnetModel = effnet,
    };

    [Fact]
    public async Task ARunMayChangeItsEncoderUntilItsFirstCheckpointAndNotAfter()
    {
        using var temp = new TempDirectory();
        var store = new FileSystemBlobStore(temp.File("store"));

        Assert.Equal(RunPlanOutcome.Created, await FineTuneRuns.SaveAsync(store, Run("effnet"), Token));
        // Started with an encoder that could not be used, it never trained: another encoder is taken.
        Assert.Equal(RunPlanOutcome.Resumed, await FineTuneRuns.SaveAsync(store, Run("/models/effnet-converted", totalSteps: 20), Token));
        Assert.Equal("/models/effnet-converted", (await FineTuneRuns.ReadAsync(store, "run", Token)).EffnetModel);

        // Once a checkpoint exists, the encoder is part of what the run trains.
        await store.WriteAsync(TrainingBlobs.Checkpoint("run", 5) + CheckpointStore.StateFile, new MemoryStream("{}"u8.ToArray()), cancellationToken: Token);
        Assert.Equal(RunPlanOutcome.Conflict, await FineTuneRuns.SaveAsync(store, Run("effnet", totalSteps: 20), Token));
        Assert.Equal(RunPlanOutcome.Resumed, await FineTuneRuns.SaveAsync(store, Run("/models/effnet-converted", totalSteps: 30), Token));
    }
}
