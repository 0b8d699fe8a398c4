using Microsoft.Extensions.Logging;
using Wuerstchen.Models.IO;
using Wuerstchen.Models.Loading;
using Wuerstchen.Pipeline.Models;
using Wuerstchen.Pipeline.Storage;

namespace Wuerstchen.Pipeline.Training;

/// <summary>
/// Publishes a finished run as a new revision of its model version (the version id is the run id): the final
/// checkpoint's EMA weights as <c>prior/</c> and its raw weights as <c>prior-raw/</c>, each with the base prior's
/// <c>config.json</c>, then <c>version.json</c>, then the pointer that makes <c>finetuned/{id}</c> follow it. The
/// revision is named by its content, so publishing the same weights again (a retry, or the finished run started
/// again) finds that revision and writes nothing new, and an extended run gets a revision of its own.
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
        string temp = Directory.CreateTempSubdirectory("wuerstchen-publish-").FullName;
        try
        {
            // Every file first, locally, so the revision (a hash of their checksums) is known before anything is uploaded.
            var local = new List<(CheckpointFile File, string Path)>();
            foreach (var (folder, weights) in new[] { (FineTunedModels.EmaFolder, checkpoint.Ema), (FineTunedModels.RawFolder, checkpoint.Raw) })
            {
                string configPath = Path.Combine(temp, $"{folder}.config.json");
                await File.WriteAllBytesAsync(configPath, config, cancellationToken).ConfigureAwait(false);
                local.Add((new CheckpointFile($"{folder}/{ModelComponent.ConfigFile}", config.Length, TrainingHashes.Of(config)), configPath));

                string weightsPath = Path.Combine(temp, $"{folder}.safetensors");
                SafetensorsWriter.Save(weightsPath, weights, new Dictionary<string, string> { ["format"] = "pt", ["versionId"] = versionId, ["weights"] = folder == FineTunedModels.EmaFolder ? "ema" : "raw" });
                string sha;
                await using (var read = File.OpenRead(weightsPath))
                    sha = await TrainingHashes.OfStreamAsync(read, cancellationToken).ConfigureAwait(false);
                local.Add((new CheckpointFile($"{folder}/{FineTunedModels.WeightsFile}", new FileInfo(weightsPath).Length, sha), weightsPath));
            }
            var files = local.Select(l => l.File).ToArray();
            string revision = FineTunedModels.RevisionOf(files);

            var existing = await versions.GetAsync(versionId, revision, cancellationToken).ConfigureAwait(false);
            if (existing is null)
            {
                foreach (var (file, path) in local)
                {
                    await using var content = File.OpenRead(path);
                    string contentType = file.Name.EndsWith(".json", StringComparison.Ordinal) ? "application/json" : "application/octet-stream";
                    await store.WriteAsync(FineTunedModels.FileBlob(versionId, revision, file.Name), content, new BlobWriteOptions { ContentType = contentType }, cancellationToken).ConfigureAwait(false);
                }
            }
            var version = existing ?? new ModelVersion
            {
                VersionId = versionId,
                Revision = revision,
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
            version = await versions.PublishAsync(version, cancellationToken).ConfigureAwait(false);
            LogPublished(run.RunId, version.RevisionName, checkpoint.Step, existing is not null);
            return version;
        }
        finally
        {
            Directory.Delete(temp, recursive: true);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Run {RunId} published as {ModelName} after {Steps} steps (already published: {Existing})")]
    private partial void LogPublished(string runId, string modelName, int steps, bool existing);
}
