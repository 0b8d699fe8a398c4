using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SixLabors.ImageSharp;
using TorchSharp;
using Wuerstchen.Models.Effnet;
using Wuerstchen.Models.IO;
using Wuerstchen.Models.Loading;
using Wuerstchen.Models.Text;
using Wuerstchen.Pipeline.Models;
using Wuerstchen.Pipeline.Storage;
using static TorchSharp.torch;

namespace Wuerstchen.Pipeline.Training;

/// <summary>A prepared item: its name in the dataset and the key of its cache entry.</summary>
public sealed record PreparedItem(string Name, string Key);

/// <summary>
/// What training reads: the items whose latents and text embeddings are in the cache, in name order, and the
/// problems of the others. Stored as <c>training/runs/{run}/prepared.json</c>.
/// </summary>
public sealed record PreparedDataset(string RunId, string DatasetVersion, string EncoderKey, IReadOnlyList<PreparedItem> Items, IReadOnlyList<DatasetProblem> Problems,
    IReadOnlyList<LongCaption>? LongCaptions = null);

/// <summary>A caption longer than the text encoder reads (CLIP: 77 tokens with its start and end tokens): it trains on the first 77.</summary>
public sealed record LongCaption(string Name, int Tokens, int Kept);

/// <summary>The outcome of preparing, small enough for an orchestration's history.</summary>
public sealed record PreparedSummary(string DatasetVersion, int Items, int Problems, int Computed, int Reused, int LongCaptions = 0);

/// <summary>
/// The prepare step: reads and checks the dataset, then computes per item the EfficientNet latents ((e + 1)/42 of
/// the training example's transform of the image) and the prior's CLIP text embedding of the caption, and caches
/// them as one safetensors shard per item under a key made of the encoders' identity, the image's content hash and
/// the caption. A later run (or a retry) re-uses every shard whose image, caption and encoders did not change.
/// </summary>
public sealed partial class DatasetPreparer(IBlobStore store, ModelLocator locator, ModelHost models, IOptions<TrainingOptions> options, ILogger<DatasetPreparer> logger)
{
    public const string LatentsTensor = "latents";
    public const string TextTensor = "text";

    /// <param name="startId">The start preparing it, named in the progress it publishes.</param>
    public async Task<PreparedSummary> PrepareAsync(FineTuneRun run, CancellationToken cancellationToken, string? startId = null)
    {
        var settings = options.Value;
        var source = DatasetSources.Open(run.Dataset, store, settings);
        var manifest = await DatasetScanner.ScanAsync(source, DatasetLimits.From(settings), cancellationToken).ConfigureAwait(false);
        await BlobJson.WriteAsync(store, TrainingBlobs.DatasetManifest(run.RunId), manifest, cancellationToken).ConfigureAwait(false);
        var longCaptions = LongCaptions(run, manifest.Items);

        string encoderKey = EncoderKey(run);
        var problems = manifest.Problems.ToList();
        var keys = new Dictionary<string, string>(StringComparer.Ordinal);
        var pending = new List<(DatasetItem Item, string Key)>();
        int reused = 0;
        foreach (var item in manifest.Items)
        {
            string key = TrainingHashes.OfJson(new { encoderKey, item.ImageSha256, item.Caption })[..32];
            if (await store.ExistsAsync(TrainingBlobs.CacheEntry(encoderKey, key), cancellationToken).ConfigureAwait(false))
            {
                keys[item.Name] = key;
                reused++;
            }
            else
            {
                pending.Add((item, key));
            }
        }

        int computed = 0;
        bool needEmpty = !await store.ExistsAsync(TrainingBlobs.EmptyCaption(encoderKey), cancellationToken).ConfigureAwait(false);
        await using var progress = new TrainingProgressPublisher(store, run.RunId, 0, settings, logger);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        void Report()
        {
            double? perSecond = computed > 0 ? computed / clock.Elapsed.TotalSeconds : null;
            progress.Report(new TrainingProgress(startId ?? "", TrainingProgress.Preparing, 0, run.Recipe.TotalSteps, 0, null, null, null,
                perSecond is > 0 ? (pending.Count - computed) / perSecond : null, null, [], reused + computed, manifest.Items.Count, DateTimeOffset.UtcNow));
        }
        Report();
        if (pending.Count > 0 || needEmpty)
        {
            using var effnet = LoadEffnet(run);
            foreach (var batch in pending.Chunk(settings.PrepareBatchSize))
            {
                var decoded = new List<(DatasetItem Item, string Key, Tensor Pixels)>();
                foreach (var (item, key) in batch)
                {
                    byte[] bytes = await source.ReadAsync(item.Name, cancellationToken).ConfigureAwait(false);
                    if (TrainingHashes.Of(bytes) != item.ImageSha256)
                    {
                        problems.Add(new DatasetProblem(item.Name, "skipped: the image changed while the dataset was being prepared."));
                        continue;
                    }
                    try
                    {
                        using var image = DatasetImages.DecodeFirstFrame(bytes, settings.MaxImagePixels);
                        using var rgb = EffnetImageTransform.ToRgbBytes(image);
                        decoded.Add((item, key, EffnetImageTransform.Apply(rgb, run.Recipe.Resolution)));
                    }
                    catch (Exception e) when (e is ImageFormatException or NotSupportedException or InvalidDataException or ArgumentException or InvalidOperationException)
                    {
                        problems.Add(new DatasetProblem(item.Name, $"undecodable: {e.Message}"));
                    }
                }
                if (decoded.Count == 0)
                    continue;
                var entries = await EncodeAsync(run, effnet, decoded.Select(d => d.Pixels).ToArray(), decoded.Select(d => d.Item.Caption).ToArray(), cancellationToken).ConfigureAwait(false);
                for (int i = 0; i < decoded.Count; i++)
                {
                    await WriteEntryAsync(TrainingBlobs.CacheEntry(encoderKey, decoded[i].Key), entries[i], decoded[i].Item.Name, cancellationToken).ConfigureAwait(false);
                    keys[decoded[i].Item.Name] = decoded[i].Key;
                    decoded[i].Pixels.Dispose();
                    computed++;
                }
                LogEncoded(run.RunId, computed, pending.Count);
                Report();
            }
            if (needEmpty)
            {
                byte[] empty = await models.WithPriorAsync(run.Recipe.BasePrior, prior =>
                {
                    using var text = prior.TextEncoder.Encode([""]);
                    return Serialize(new Dictionary<string, Tensor> { [TextTensor] = text[0] }, "");
                }, cancellationToken).ConfigureAwait(false);
                await WriteBytesAsync(TrainingBlobs.EmptyCaption(encoderKey), empty, cancellationToken).ConfigureAwait(false);
            }
        }

        var prepared = new PreparedDataset(run.RunId, manifest.Version, encoderKey,
            manifest.Items.Where(i => keys.ContainsKey(i.Name)).Select(i => new PreparedItem(i.Name, keys[i.Name])).ToArray(),
            problems.OrderBy(p => p.Name, StringComparer.Ordinal).ToArray(),
            longCaptions.Where(c => keys.ContainsKey(c.Name)).ToArray());
        await BlobJson.WriteAsync(store, TrainingBlobs.DatasetReport(run.RunId), new
        {
            manifest.Format,
            manifest.Version,
            items = prepared.Items.Count,
            problems = prepared.Problems,
            longCaptions = new { count = prepared.LongCaptions!.Count, items = prepared.LongCaptions },
        }, cancellationToken).ConfigureAwait(false);
        await BlobJson.WriteAsync(store, TrainingBlobs.Prepared(run.RunId), prepared, cancellationToken).ConfigureAwait(false);
        foreach (var problem in prepared.Problems)
            LogProblem(run.RunId, problem.Name, problem.Reason);
        if (prepared.LongCaptions.Count > 0)
            LogLongCaptions(run.RunId, prepared.LongCaptions.Count);
        return new PreparedSummary(manifest.Version, prepared.Items.Count, prepared.Problems.Count, computed, reused, prepared.LongCaptions.Count);
    }

    /// <summary>The captions the base prior's tokenizer cuts (longer than its model length, start and end tokens included).</summary>
    private IReadOnlyList<LongCaption> LongCaptions(FineTuneRun run, IReadOnlyList<DatasetItem> items)
    {
        var tokenizer = ClipTokenizer.FromDirectory(ModelRepository.Open(locator.Resolve(run.Recipe.BasePrior)).Component("tokenizer").Directory);
        var found = new List<LongCaption>();
        foreach (var item in items)
        {
            int tokens = tokenizer.Encode(item.Caption).Count;
            if (tokens > tokenizer.ModelMaxLength)
                found.Add(new LongCaption(item.Name, tokens, tokenizer.ModelMaxLength));
        }
        return found;
    }

    /// <summary>Reads a cache entry: (16, h, w) latents and (77, D) text states, float32 on the CPU.</summary>
    public static (Tensor Latents, Tensor Text) ReadEntry(byte[] content, string name)
    {
        var (tensors, _) = SafetensorsFile.ReadAll(new MemoryStream(content), name);
        if (!tensors.Remove(LatentsTensor, out var latents) | !tensors.Remove(TextTensor, out var text))
        {
            latents?.Dispose();
            text?.Dispose();
            foreach (var other in tensors.Values)
                other.Dispose();
            throw new InvalidDataException($"Cache entry '{name}' lacks '{LatentsTensor}' or '{TextTensor}'.");
        }
        foreach (var other in tensors.Values)
            other.Dispose();
        return (latents!, text!);
    }

    /// <summary>Names the encoders and the transform: an entry made with other weights or another resolution is never re-used.</summary>
    private string EncoderKey(FineTuneRun run)
    {
        var effnet = EffnetComponent(run);
        var textEncoder = ModelRepository.Open(locator.Resolve(run.Recipe.BasePrior)).Component("text_encoder");
        return TrainingHashes.OfJson(new
        {
            effnet = Identity(effnet),
            transform = $"resize-short-bilinear-aa/center-crop/imagenet-norm/{run.Recipe.Resolution}",
            scale = "(e+1)/42",
            text = Identity(textEncoder),
            precision = models.Inference.DType.ToString(),
        })[..24];
    }

    private static object Identity(ModelComponent component) => component.WeightFiles().Select(f =>
    {
        var info = new FileInfo(f);
        return new { name = info.Name, bytes = info.Length, modified = info.LastWriteTimeUtc.Ticks };
    }).ToArray();

    private ModelComponent EffnetComponent(FineTuneRun run)
    {
        var repository = ModelRepository.Open(locator.Resolve(run.EffnetModel));
        return repository.Index is null ? repository.RootModel() : repository.Component("image_encoder");
    }

    private EfficientNetEncoder LoadEffnet(FineTuneRun run)
    {
        var effnet = EfficientNetEncoder.FromComponent(EffnetComponent(run));
        effnet.to(models.Inference.Device);
        return effnet;
    }

    private async Task<byte[][]> EncodeAsync(FineTuneRun run, EfficientNetEncoder effnet, Tensor[] pixels, string[] captions, CancellationToken cancellationToken)
    {
        Tensor latents;
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            var output = effnet.forward(stack(pixels).to(models.Inference.Device));
            latents = EfficientNetEncoder.ToPriorLatents(output).to(float32).cpu().MoveToOuterDisposeScope();
        }
        using (latents)
        {
            return await models.WithPriorAsync(run.Recipe.BasePrior, prior =>
            {
                using var scope = NewDisposeScope();
                var text = prior.TextEncoder.Encode(captions).to(float32).cpu();
                return Enumerable.Range(0, captions.Length)
                    .Select(i => Serialize(new Dictionary<string, Tensor> { [LatentsTensor] = latents[i], [TextTensor] = text[i] }, captions[i]))
                    .ToArray();
            }, cancellationToken).ConfigureAwait(false);
        }
    }

    private static byte[] Serialize(Dictionary<string, Tensor> tensors, string caption)
    {
        using var stream = new MemoryStream();
        SafetensorsWriter.Write(stream, tensors, new Dictionary<string, string> { ["caption"] = caption });
        return stream.ToArray();
    }

    private Task WriteEntryAsync(string name, byte[] content, string item, CancellationToken cancellationToken) =>
        store.WriteAsync(name, new MemoryStream(content), new BlobWriteOptions { ContentType = "application/octet-stream", Metadata = new Dictionary<string, string> { ["item"] = item } }, cancellationToken);

    private Task WriteBytesAsync(string name, byte[] content, CancellationToken cancellationToken) =>
        store.WriteAsync(name, new MemoryStream(content), new BlobWriteOptions { ContentType = "application/octet-stream" }, cancellationToken);

    [LoggerMessage(Level = LogLevel.Information, Message = "Run {RunId}: encoded {Done} of {Total} new dataset items")]
    private partial void LogEncoded(string runId, int done, int total);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Run {RunId}: {Count} caption(s) are longer than the text encoder reads and were cut (see the dataset report)")]
    private partial void LogLongCaptions(string runId, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Run {RunId}: dataset item {Item} {Reason}")]
    private partial void LogProblem(string runId, string item, string reason);
}
