using Microsoft.Extensions.Logging;
using Wuerstchen.Models.IO;
using Wuerstchen.Models.Loading;
using Wuerstchen.Pipeline.Models;
using Wuerstchen.Pipeline.Storage;

namespace Wuerstchen.Pipeline.Training;

/// <summary>
/// Publishes a finished run as a model version: the final checkpoint's EMA weights as <c>models/{id}/prior/</c> and
/// its raw weights as <c>models/{id}/prior-raw/</c>, each with the base prior's <c>config.json</c>, then
/// <c>version.json</c> last. The version id is the run id, so publishing again (a retry) rewrites the same version.
/// </summary>
public sealed partial class ModelVersionPublisher(IBlobStore store, ModelLocator locator, CheckpointStore checkpoints, FineTunedModels versions, ILogger<ModelVersionPublisher> logger)
{
    public async Task<ModelVersion> PublishAsync(FineTuneRun run, CancellationToken cancellationToken)
    {
        var lookup = await checkpoints.LoadLatestAsync(run.RunId, cancellationToken).ConfigureAwait(false);
        using var checkpoint = lookup.Checkpoint ?? throw new InvalidOperationException($"Run '{run.RunId}' has no readable checkpoint to publish.");
        if (checkpoint.Step < run.Recipe.TotalSteps)
            throw new InvalidOperationException($"Run '{run.RunId}' is at step {checkpoint.Step} of {run.Recipe.TotalSteps}; only a finished run is published.");
        var prepared = await BlobJson.ReadAsync<PreparedDataset>(store, TrainingBlobs.Prepared(run.RunId), cancellationToken).ConfigureAwait(false);
        byte[] config = await File.ReadAllBytesAsync(ModelRepository.Open(locator.Resolve(run.Recipe.BasePrior)).Component("prior").ConfigPath, cancellationToken).ConfigureAwait(false);

        string versionId = run.RunId;
        var files = new List<CheckpointFile>();
        string temp = Directory.CreateTempSubdirectory("wuerstchen-publish-").FullName;
        try
        {
            foreach (var (folder, weights) in new[] { (FineTunedModels.EmaFolder, checkpoint.Ema), (FineTunedModels.RawFolder, checkpoint.Raw) })
            {
                string configName = $"{folder}/{ModelComponent.ConfigFile}";
                await store.WriteAsync(FineTunedModels.FileBlob(versionId, configName), new MemoryStream(config), new BlobWriteOptions { ContentType = "application/json" }, cancellationToken).ConfigureAwait(false);
                files.Add(new CheckpointFile(configName, config.Length, TrainingHashes.Of(config)));

                string path = Path.Combine(temp, $"{folder}.safetensors");
                SafetensorsWriter.Save(path, weights, new Dictionary<string, string> { ["format"] = "pt", ["versionId"] = versionId, ["weights"] = folder == FineTunedModels.EmaFolder ? "ema" : "raw" });
                string weightsName = $"{folder}/{FineTunedModels.WeightsFile}";
                string sha;
                await using (var read = File.OpenRead(path))
                    sha = await TrainingHashes.OfStreamAsync(read, cancellationToken).ConfigureAwait(false);
                await using (var content = File.OpenRead(path))
                {
                    await store.WriteAsync(FineTunedModels.FileBlob(versionId, weightsName), content, new BlobWriteOptions { ContentType = "application/octet-stream" }, cancellationToken).ConfigureAwait(false);
                    files.Add(new CheckpointFile(weightsName, content.Length, sha));
                }
            }
        }
        finally
        {
            Directory.Delete(temp, recursive: true);
        }

        var version = new ModelVersion
        {
            VersionId = versionId,
            Name = FineTunedModels.NameOf(versionId),
            RawName = FineTunedModels.RawNameOf(versionId),
            BasePrior = run.Recipe.BasePrior,
            RunId = run.RunId,
            Dataset = run.Dataset,
            DatasetKey = run.DatasetKey,
            DatasetVersion = prepared.DatasetVersion,
            DatasetItems = prepared.Items.Count,
            Recipe = run.Recipe,
            Steps = checkpoint.Step,
            FinalLoss = checkpoint.State.LastLoss,
            CreatedAt = DateTimeOffset.UtcNow,
            Files = files,
        };
        await versions.WriteVersionAsync(version, cancellationToken).ConfigureAwait(false);
        LogPublished(run.RunId, version.Name, checkpoint.Step);
        return version;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Run {RunId} published as {ModelName} after {Steps} steps")]
    private partial void LogPublished(string runId, string modelName, int steps);
}
