using Microsoft.Extensions.Logging;
using TorchSharp;
using Wuerstchen.Models.Imaging;
using Wuerstchen.Models.Loading;
using Wuerstchen.Models.Pipelines;
using Wuerstchen.Models.Schedulers;
using Wuerstchen.Models.StageC;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Models;
using Wuerstchen.Pipeline.Storage;
using static TorchSharp.torch;

namespace Wuerstchen.Pipeline.Training;

/// <summary>
/// The validation grid of a checkpoint, as in the seed blog: the run's fixed prompts and seeds, one column each, the
/// EMA weights' images in the top row and the raw weights' below. Both rows use the same Stage C and Stage B noise,
/// so they differ only by the weights. Stage C runs with the base prior's text encoder; Stage B/A with the decoder model.
/// </summary>
public sealed partial class ValidationGridRenderer(IBlobStore store, ModelLocator locator, ModelHost models, CheckpointStore checkpoints, ILogger<ValidationGridRenderer> logger)
{
    public async Task<string> RenderAsync(FineTuneRun run, int step, CancellationToken cancellationToken)
    {
        var (checkpoint, reason) = await checkpoints.TryLoadAsync(run.RunId, step, cancellationToken).ConfigureAwait(false);
        if (checkpoint is null)
            throw new InvalidDataException($"The checkpoint of run '{run.RunId}' at step {step} cannot be read: {reason}");
        var validation = run.Recipe.Validation;
        string configPath = ModelRepository.Open(locator.Resolve(run.Recipe.BasePrior)).Component("prior").ConfigPath;
        var config = WuerstchenPriorConfig.Read(configPath);
        Tensor embeddings;
        using (checkpoint)
        {
            using var ema = Build(config, checkpoint.Ema);
            using var raw = Build(config, checkpoint.Raw);
            embeddings = await models.WithPriorAsync(run.Recipe.BasePrior, basePipeline =>
            {
                using var scope = NewDisposeScope();
                var rows = new[] { ema, raw }.Select(prior =>
                {
                    // Borrows the resident pipeline's text encoder; this pipeline is never disposed (that would dispose it).
                    var pipeline = new WuerstchenPriorPipeline(basePipeline.TextEncoder, prior, new DdpmWuerstchenScheduler(basePipeline.Scheduler.Config),
                        basePipeline.ResolutionMultiple, basePipeline.LatentMean, basePipeline.LatentStd, basePipeline.Options);
                    using var noise = new ItemwiseNoise(validation.Seeds, 1);
                    return pipeline.Generate(new PriorGenerationSettings
                    {
                        Prompts = validation.Prompts,
                        Width = validation.Size,
                        Height = validation.Size,
                        GuidanceScale = validation.PriorGuidance,
                        Steps = validation.PriorSteps,
                    }, noise, cancellationToken: cancellationToken);
                }).ToArray();
                return cat(rows).cpu().MoveToOuterDisposeScope();
            }, cancellationToken).ConfigureAwait(false);
        }

        byte[] png;
        using (embeddings)
        {
            png = await models.WithDecoderAsync(validation.DecoderModel, decoder =>
            {
                using var scope = NewDisposeScope();
                var seeds = validation.Seeds.Concat(validation.Seeds).Select(s => unchecked(s + 1));
                using var noise = new ItemwiseNoise(seeds, 1);
                var latents = decoder.Generate(embeddings, new DecoderGenerationSettings
                {
                    Prompts = validation.Prompts.Concat(validation.Prompts).ToArray(),
                    Steps = validation.DecoderSteps,
                }, noise, cancellationToken: cancellationToken);
                var pixels = PngImages.ToBytes(decoder.Decode(latents));
                long columns = validation.Prompts.Count, height = pixels.shape[1], width = pixels.shape[2];
                var grid = pixels.view(2, columns, height, width, 3).permute(0, 2, 1, 3, 4).reshape(2 * height, columns * width, 3);
                return PngImages.Encode(grid, null);
            }, cancellationToken).ConfigureAwait(false);
        }

        string name = TrainingBlobs.Grid(run.RunId, step);
        await store.WriteAsync(name, new MemoryStream(png), new BlobWriteOptions { ContentType = "image/png" }, cancellationToken).ConfigureAwait(false);
        LogRendered(run.RunId, step, name);
        return name;
    }

    private WuerstchenPrior Build(WuerstchenPriorConfig config, IReadOnlyDictionary<string, Tensor> weights)
    {
        var prior = new WuerstchenPrior(config, models.Inference.Device, models.Inference.DType);
        Weights.CopyInto(prior, weights, "checkpoint weights");
        prior.eval();
        return prior;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Run {RunId}: validation grid of step {Step} written to {BlobName}")]
    private partial void LogRendered(string runId, int step, string blobName);
}
