using System.Text.Json;
using Microsoft.Extensions.Logging;
using TorchSharp;
using Wuerstchen.Models.Imaging;
using Wuerstchen.Models.IO;
using Wuerstchen.Models.Pipelines;
using Wuerstchen.Models.Schedulers;
using Wuerstchen.Pipeline.Generation.Batching;
using Wuerstchen.Pipeline.Models;
using Wuerstchen.Pipeline.Storage;
using static TorchSharp.torch;

namespace Wuerstchen.Pipeline.Generation;

/// <summary>What a stage left in storage: the blob name(s), and whether an earlier run had already made them.</summary>
public sealed record StageResult(IReadOnlyList<string> Blobs, bool Reused);

/// <summary>
/// The three generation stages over blob storage. Stage C: prompts → image embeddings blob; Stage B: embeddings blob →
/// Stage B latents blob; Stage A: latents blob → one PNG per image. Blob names derive from the batch's content, and a
/// stage whose output already exists (a retry, a replay, the same request again) reuses it. Each stage reads its inputs
/// and writes its outputs itself; only the model call goes through the <see cref="StageBatcher"/>, which runs it together
/// with compatible calls of other generations (same stage, model, size, schedule, guidance and precision). Every item
/// draws from its own seeded streams, so its images do not depend on its batch-mates.
/// </summary>
public sealed partial class GenerationStages(ModelHost models, IBlobStore store, StageBatcher batcher, ILogger<GenerationStages> logger)
{
    public const string EmbeddingsTensor = "image_embeddings";
    public const string LatentsTensor = "latents";
    private const string StageKeyMetadata = "stageKey";

    private static readonly JsonSerializerOptions KeyJson = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    public static string StageCBlob(GenerationBatch batch) => $"latents/stage-c/{batch.StageCKey()}.safetensors";

    public static string StageBBlob(GenerationBatch batch) => $"latents/stage-b/{batch.StageBKey(batch.StageCKey())}.safetensors";

    public static string ImageBlob(GenerationBatch batch, int item, int index) =>
        $"images/{batch.StageBKey(batch.StageCKey())}/{item:D4}-{index:D2}.png";

    /// <summary>What Stage C calls may share a model call: same model, precision, size, schedule and guidance.</summary>
    public static string StageCBatchKey(GenerationSettings s) => "C|" + JsonSerializer.Serialize(new
    {
        s.PriorModel, s.Precision, s.Width, s.Height, s.PriorTimesteps, steps = s.PriorTimesteps is null ? s.PriorSteps : 0, s.PriorGuidanceScale,
    }, KeyJson);

    /// <summary>What Stage B calls may share a model call: same decoder model, precision, size, schedule and guidance.</summary>
    public static string StageBBatchKey(GenerationSettings s) => "B|" + JsonSerializer.Serialize(new
    {
        s.DecoderModel, s.Precision, s.Width, s.Height, s.DecoderTimesteps, steps = s.DecoderTimesteps is null ? s.DecoderSteps : 0, s.DecoderGuidanceScale,
    }, KeyJson);

    /// <summary>What Stage A decodes may share a model call: same decoder model, precision and size.</summary>
    public static string StageABatchKey(GenerationSettings s) => "A|" + JsonSerializer.Serialize(new { s.DecoderModel, s.Precision, s.Width, s.Height }, KeyJson);

    public async Task<StageResult> RunStageCAsync(GenerationBatch batch, IProgress<StageProgress>? progress, CancellationToken cancellationToken)
    {
        string name = StageCBlob(batch);
        string key = batch.StageCKey();
        if (await IsCompleteAsync(name, key, cancellationToken).ConfigureAwait(false))
            return new StageResult([name], Reused: true);

        var settings = batch.Settings;
        var entry = new StageEntry<byte[]>(batch, key, null, "StageC", settings.PriorStepCount, progress, cancellationToken, StageBBatchKey(settings));
        byte[] content = await batcher.RunAsync<StageEntry<byte[]>, byte[]>(StageCBatchKey(settings), entry, take =>
            models.WithPriorAsync(settings.PriorModel, prior => batcher.Execute<StageEntry<byte[]>, byte[]>(take(), (entries, token) => SamplePrior(prior, entries, token)),
                CancellationToken.None)).ConfigureAwait(false);

        await WriteAsync(name, content, key, cancellationToken).ConfigureAwait(false);
        LogStageWritten("C", name, batch.Items.Count);
        return new StageResult([name], Reused: false);
    }

    private static IReadOnlyList<byte[]> SamplePrior(WuerstchenPriorPipeline prior, IReadOnlyList<StageEntry<byte[]>> entries, CancellationToken token)
    {
        using var scope = NewDisposeScope();
        var settings = entries[0].Batch.Settings;
        var items = Items(entries);
        using var noise = new ItemwiseNoise(items.Select(x => (x.Item.Seed, x.Images)));
        int images = entries.Sum(e => e.Images);
        var embeddings = prior.Generate(new PriorGenerationSettings
        {
            Prompts = items.Select(x => x.Item.Prompt).ToArray(),
            NegativePrompts = NegativePrompts(items.Select(x => x.Item)),
            Width = settings.Width,
            Height = settings.Height,
            ImagesPerPrompt = settings.ImagesPerPrompt,
            ImagesOfPrompt = items.Select(x => x.Images).ToArray(),
            GuidanceScale = settings.PriorGuidanceScale,
            Steps = settings.PriorSteps,
            Timesteps = settings.PriorTimesteps,
        }, noise, step => ReportStep(entries, step, images), token);
        return Split(embeddings, entries).Select(part => Serialize(EmbeddingsTensor, part.Rows, part.Entry.Batch, part.Entry.Key, "C")).ToArray();
    }

    public async Task<StageResult> RunStageBAsync(GenerationBatch batch, IProgress<StageProgress>? progress, CancellationToken cancellationToken)
    {
        string name = StageBBlob(batch);
        string key = batch.StageBKey(batch.StageCKey());
        if (await IsCompleteAsync(name, key, cancellationToken).ConfigureAwait(false))
            return new StageResult([name], Reused: true);

        // The input is read and checked here, in this generation's own task: a bad blob fails this generation only.
        byte[] embeddings = await ReadInputAsync(StageCBlob(batch), EmbeddingsTensor, batch, cancellationToken).ConfigureAwait(false);
        var settings = batch.Settings;
        var entry = new StageEntry<byte[]>(batch, key, (embeddings, StageCBlob(batch)), "StageB", settings.DecoderStepCount, progress, cancellationToken,
            StageABatchKey(settings));
        byte[] content = await batcher.RunAsync<StageEntry<byte[]>, byte[]>(StageBBatchKey(settings), entry, take =>
            models.WithDecoderAsync(settings.DecoderModel, decoder => batcher.Execute<StageEntry<byte[]>, byte[]>(take(), (entries, token) => SampleDecoder(decoder, entries, token)),
                CancellationToken.None)).ConfigureAwait(false);

        await WriteAsync(name, content, key, cancellationToken).ConfigureAwait(false);
        LogStageWritten("B", name, batch.Items.Count);
        return new StageResult([name], Reused: false);
    }

    private static IReadOnlyList<byte[]> SampleDecoder(WuerstchenDecoderPipeline decoder, IReadOnlyList<StageEntry<byte[]>> entries, CancellationToken token)
    {
        using var scope = NewDisposeScope();
        var settings = entries[0].Batch.Settings;
        var items = Items(entries);
        var embeddings = Inputs(entries, EmbeddingsTensor);
        using var noise = new ItemwiseNoise(items.Select(x => (x.Item.EffectiveDecoderSeed, x.Images)));
        int images = entries.Sum(e => e.Images);
        var latents = decoder.Generate(embeddings, new DecoderGenerationSettings
        {
            Prompts = items.Select(x => x.Item.Prompt).ToArray(),
            NegativePrompts = NegativePrompts(items.Select(x => x.Item)),
            EmbeddingsOfPrompt = items.Select(x => x.Images).ToArray(),
            GuidanceScale = settings.DecoderGuidanceScale,
            Steps = settings.DecoderSteps,
            Timesteps = settings.DecoderTimesteps,
        }, noise, step => ReportStep(entries, step, images), token);
        return Split(latents, entries).Select(part => Serialize(LatentsTensor, part.Rows, part.Entry.Batch, part.Entry.Key, "B")).ToArray();
    }

    /// <summary>Decodes the Stage B latents and writes one PNG per image, item-major, each with its recipe embedded.</summary>
    public async Task<StageResult> RunStageAAsync(GenerationBatch batch, IProgress<StageProgress>? progress, CancellationToken cancellationToken)
    {
        int perItem = batch.Settings.ImagesPerPrompt;
        var names = Enumerable.Range(0, batch.Items.Count)
            .SelectMany(item => Enumerable.Range(0, perItem).Select(index => ImageBlob(batch, item, index))).ToArray();
        bool allThere = true;
        foreach (string image in names)
            allThere &= await store.ExistsAsync(image, cancellationToken).ConfigureAwait(false);
        if (allThere)
            return new StageResult(names, Reused: true);

        byte[] latents = await ReadInputAsync(StageBBlob(batch), LatentsTensor, batch, cancellationToken).ConfigureAwait(false);
        // Only the decode holds the decoder; it hands back 8-bit pixels made on the device. PNG encoding and the uploads
        // run after the decoder is free for the next caller, one image per task.
        var entry = new StageEntry<Tensor>(batch, "", (latents, StageBBlob(batch)), "StageA", 1, progress, cancellationToken, nextKey: null);
        using var pixels = await batcher.RunAsync<StageEntry<Tensor>, Tensor>(StageABatchKey(batch.Settings), entry, take =>
            models.WithDecoderAsync(batch.Settings.DecoderModel, decoder => batcher.Execute<StageEntry<Tensor>, Tensor>(take(), (entries, _) => Decode(decoder, entries)),
                CancellationToken.None)).ConfigureAwait(false);
        progress?.Report(new StageProgress("StageA", 1, 1, DateTimeOffset.UtcNow, StageProgress.Running, entry.BatchImages));

        await Task.WhenAll(Enumerable.Range(0, names.Length).Select(i => Task.Run(async () =>
        {
            byte[] png;
            using (var image = pixels[i])
                png = PngImages.Encode(image, batch.RecipeOf(i / perItem, i % perItem));
            using var content = new MemoryStream(png);
            await store.WriteAsync(names[i], content, new BlobWriteOptions { ContentType = "image/png" }, cancellationToken).ConfigureAwait(false);
        }, cancellationToken))).ConfigureAwait(false);
        LogStageWritten("A", names[0], names.Length);
        return new StageResult(names, Reused: false);
    }

    private static IReadOnlyList<Tensor> Decode(WuerstchenDecoderPipeline decoder, IReadOnlyList<StageEntry<Tensor>> entries)
    {
        using var scope = NewDisposeScope();
        var latents = Inputs(entries, LatentsTensor);
        var pixels = decoder.DecodeToBytes(latents);
        // Each generation's share leaves the batch's scope: its own task encodes and writes it, and disposes it.
        return Split(pixels, entries).Select(part => part.Rows.clone().DetachFromDisposeScope()).ToArray();
    }

    /// <summary>The entries' input tensors, read from their blobs' bytes in the batch's dispose scope and joined in entry order.</summary>
    private static Tensor Inputs<TResult>(IReadOnlyList<StageEntry<TResult>> entries, string tensorName)
    {
        var inputs = entries.Select(e => ReadTensor(e.Input!, e.InputBlob!, tensorName)).ToArray();
        return inputs.Length == 1 ? inputs[0] : cat(inputs);
    }

    /// <summary>Every item of every entry in order, with its image count.</summary>
    private static (GenerationItem Item, int Images)[] Items<TResult>(IReadOnlyList<StageEntry<TResult>> entries) =>
        entries.SelectMany(e => e.Batch.Items.Select(item => (item, e.Batch.Settings.ImagesPerPrompt))).ToArray();

    /// <summary>Each entry's rows of a batch's output, in entry order.</summary>
    private static IEnumerable<(StageEntry<TResult> Entry, Tensor Rows)> Split<TResult>(Tensor output, IReadOnlyList<StageEntry<TResult>> entries)
    {
        long offset = 0;
        foreach (var entry in entries)
        {
            yield return (entry, output.narrow(0, offset, entry.Images));
            offset += entry.Images;
        }
    }

    private static void ReportStep<TResult>(IReadOnlyList<StageEntry<TResult>> entries, SamplingStep step, int batchImages)
    {
        var now = DateTimeOffset.UtcNow;
        foreach (var entry in entries)
            entry.Progress?.Report(new StageProgress(entry.Stage, step.Step, step.StepCount, now, StageProgress.Running, batchImages));
    }

    /// <summary>
    /// Reads a stage's input blob and checks that it holds this batch's rows, here in this generation's own task: a bad
    /// blob fails this generation only, before any batch sees it. The batch reads the tensor again from the bytes.
    /// </summary>
    private async Task<byte[]> ReadInputAsync(string blob, string tensorName, GenerationBatch batch, CancellationToken cancellationToken)
    {
        byte[] bytes = await ReadBytesAsync(blob, cancellationToken).ConfigureAwait(false);
        using var tensor = ReadTensor(bytes, blob, tensorName);
        long rows = (long)batch.Items.Count * batch.Settings.ImagesPerPrompt;
        if (tensor.dim() != 4 || tensor.shape[0] != rows)
            throw new InvalidDataException($"Blob '{blob}' holds a '{tensorName}' tensor of shape {string.Join("×", tensor.shape)}; this generation needs {rows} rows of 4 dimensions.");
        return bytes;
    }

    /// <summary>One generation's part of a batched stage call.</summary>
    private sealed class StageEntry<TResult>(GenerationBatch batch, string key, (byte[] Bytes, string Blob)? input, string stage, int stepCount,
        IProgress<StageProgress>? progress, CancellationToken token, string? nextKey)
        : BatchEntry<TResult>(batch.Items.Count * batch.Settings.ImagesPerPrompt, token)
    {
        public GenerationBatch Batch { get; } = batch;
        public string Key { get; } = key;
        public byte[]? Input { get; } = input?.Bytes;
        public string? InputBlob { get; } = input?.Blob;
        public override string Stage { get; } = stage;
        public override string? CohortId { get; } = StageCBlob(batch);
        public override string? NextKey { get; } = nextKey;
        public IProgress<StageProgress>? Progress { get; } = progress;

        public override void OnWaiting() =>
            Progress?.Report(new StageProgress(Stage, 0, stepCount, DateTimeOffset.UtcNow, StageProgress.WaitingForBatch));

        /// <summary>The images of the model call that gave this entry its result (the last one, after a split).</summary>
        public int? BatchImages { get; private set; }

        public override void OnBatched(int batchImages)
        {
            BatchImages = batchImages;
            Progress?.Report(new StageProgress(Stage, 0, stepCount, DateTimeOffset.UtcNow, StageProgress.Running, batchImages));
        }
    }

    private static IReadOnlyList<string>? NegativePrompts(IEnumerable<GenerationItem> items) =>
        items.All(i => i.NegativePrompt is null) ? null : items.Select(i => i.NegativePrompt ?? "").ToArray();

    private static byte[] Serialize(string tensorName, Tensor tensor, GenerationBatch batch, string key, string stage)
    {
        using var stream = new MemoryStream();
        SafetensorsWriter.Write(stream, new Dictionary<string, Tensor> { [tensorName] = tensor.cpu() }, new Dictionary<string, string>
        {
            ["stage"] = stage,
            [StageKeyMetadata] = key,
            ["batch"] = batch.ToJson(),
            ["shape"] = string.Join(",", tensor.shape),
            ["dtype"] = tensor.dtype.ToString(),
            ["priorModel"] = batch.Settings.PriorModel,
            ["decoderModel"] = batch.Settings.DecoderModel,
        });
        return stream.ToArray();
    }

    private static Tensor ReadTensor(byte[] blob, string name, string tensorName)
    {
        var (tensors, _) = SafetensorsFile.ReadAll(new MemoryStream(blob), name);
        if (!tensors.Remove(tensorName, out var tensor))
        {
            foreach (var other in tensors.Values)
                other.Dispose();
            throw new InvalidDataException($"Blob '{name}' holds no '{tensorName}' tensor.");
        }
        foreach (var other in tensors.Values)
            other.Dispose();
        return tensor;
    }

    private async Task<bool> IsCompleteAsync(string name, string key, CancellationToken cancellationToken)
    {
        var info = await store.GetInfoAsync(name, cancellationToken).ConfigureAwait(false);
        return info is not null && info.Metadata.TryGetValue(StageKeyMetadata, out var stored) && stored == key;
    }

    private async Task WriteAsync(string name, byte[] content, string key, CancellationToken cancellationToken)
    {
        using var stream = new MemoryStream(content);
        await store.WriteAsync(name, stream, new BlobWriteOptions
        {
            ContentType = "application/octet-stream",
            Metadata = new Dictionary<string, string> { [StageKeyMetadata] = key },
        }, cancellationToken).ConfigureAwait(false);
    }

    private async Task<byte[]> ReadBytesAsync(string name, CancellationToken cancellationToken)
    {
        await using var stream = await store.OpenReadAsync(name, cancellationToken).ConfigureAwait(false);
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
        return buffer.ToArray();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Stage {Stage} wrote {BlobName} for {ItemCount} item(s)")]
    private partial void LogStageWritten(string stage, string blobName, int itemCount);
}
