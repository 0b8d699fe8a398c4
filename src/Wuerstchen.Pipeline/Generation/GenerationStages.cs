using Microsoft.Extensions.Logging;
using TorchSharp;
using Wuerstchen.Models.Imaging;
using Wuerstchen.Models.IO;
using Wuerstchen.Models.Pipelines;
using Wuerstchen.Models.Schedulers;
using Wuerstchen.Pipeline.Models;
using Wuerstchen.Pipeline.Storage;
using static TorchSharp.torch;

namespace Wuerstchen.Pipeline.Generation;

/// <summary>What a stage left in storage: the blob name(s), and whether an earlier run had already made them.</summary>
public sealed record StageResult(IReadOnlyList<string> Blobs, bool Reused);

/// <summary>
/// The three generation stages over blob storage. Stage C: prompts → image embeddings blob; Stage B: embeddings blob →
/// Stage B latents blob; Stage A: latents blob → one PNG per image. Blob names derive from the batch's content, and a
/// stage whose output already exists (a retry, a replay, the same request again) reuses it.
/// </summary>
public sealed partial class GenerationStages(ModelHost models, IBlobStore store, ILogger<GenerationStages> logger)
{
    public const string EmbeddingsTensor = "image_embeddings";
    public const string LatentsTensor = "latents";
    private const string StageKeyMetadata = "stageKey";

    public static string StageCBlob(GenerationBatch batch) => $"latents/stage-c/{batch.StageCKey()}.safetensors";

    public static string StageBBlob(GenerationBatch batch) => $"latents/stage-b/{batch.StageBKey(batch.StageCKey())}.safetensors";

    public static string ImageBlob(GenerationBatch batch, int item, int index) =>
        $"images/{batch.StageBKey(batch.StageCKey())}/{item:D4}-{index:D2}.png";

    public async Task<StageResult> RunStageCAsync(GenerationBatch batch, IProgress<StageProgress>? progress, CancellationToken cancellationToken)
    {
        string name = StageCBlob(batch);
        string key = batch.StageCKey();
        if (await IsCompleteAsync(name, key, cancellationToken).ConfigureAwait(false))
            return new StageResult([name], Reused: true);

        var settings = batch.Settings;
        byte[] content = await models.WithPriorAsync(settings.PriorModel, prior =>
        {
            using var scope = NewDisposeScope();
            using var noise = new ItemwiseNoise(batch.Items.Select(i => i.Seed), settings.ImagesPerPrompt);
            var embeddings = prior.Generate(new PriorGenerationSettings
            {
                Prompts = batch.Items.Select(i => i.Prompt).ToArray(),
                NegativePrompts = NegativePrompts(batch),
                Width = settings.Width,
                Height = settings.Height,
                ImagesPerPrompt = settings.ImagesPerPrompt,
                GuidanceScale = settings.PriorGuidanceScale,
                Steps = settings.PriorSteps,
                Timesteps = settings.PriorTimesteps,
            }, noise, step => progress?.Report(new StageProgress("StageC", step.Step, step.StepCount, DateTimeOffset.UtcNow)), cancellationToken);
            return Serialize(EmbeddingsTensor, embeddings, batch, key, "C");
        }, cancellationToken).ConfigureAwait(false);

        await WriteAsync(name, content, key, cancellationToken).ConfigureAwait(false);
        LogStageWritten("C", name, batch.Items.Count);
        return new StageResult([name], Reused: false);
    }

    public async Task<StageResult> RunStageBAsync(GenerationBatch batch, IProgress<StageProgress>? progress, CancellationToken cancellationToken)
    {
        string name = StageBBlob(batch);
        string key = batch.StageBKey(batch.StageCKey());
        if (await IsCompleteAsync(name, key, cancellationToken).ConfigureAwait(false))
            return new StageResult([name], Reused: true);

        byte[] embeddingsBlob = await ReadBytesAsync(StageCBlob(batch), cancellationToken).ConfigureAwait(false);
        var settings = batch.Settings;
        byte[] content = await models.WithDecoderAsync(settings.DecoderModel, decoder =>
        {
            using var scope = NewDisposeScope();
            var embeddings = ReadTensor(embeddingsBlob, StageCBlob(batch), EmbeddingsTensor);
            using var noise = new ItemwiseNoise(batch.Items.Select(i => i.EffectiveDecoderSeed), settings.ImagesPerPrompt);
            var latents = decoder.Generate(embeddings, new DecoderGenerationSettings
            {
                Prompts = batch.Items.Select(i => i.Prompt).ToArray(),
                NegativePrompts = NegativePrompts(batch),
                GuidanceScale = settings.DecoderGuidanceScale,
                Steps = settings.DecoderSteps,
                Timesteps = settings.DecoderTimesteps,
            }, noise, step => progress?.Report(new StageProgress("StageB", step.Step, step.StepCount, DateTimeOffset.UtcNow)), cancellationToken);
            return Serialize(LatentsTensor, latents, batch, key, "B");
        }, cancellationToken).ConfigureAwait(false);

        await WriteAsync(name, content, key, cancellationToken).ConfigureAwait(false);
        LogStageWritten("B", name, batch.Items.Count);
        return new StageResult([name], Reused: false);
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

        byte[] latentsBlob = await ReadBytesAsync(StageBBlob(batch), cancellationToken).ConfigureAwait(false);
        // Only the decode holds the decoder; it hands back 8-bit pixels made on the device. PNG encoding and the uploads
        // run after the decoder is free for the next caller, one image per task.
        using var pixels = await models.WithDecoderAsync(batch.Settings.DecoderModel, decoder =>
        {
            using var latents = ReadTensor(latentsBlob, StageBBlob(batch), LatentsTensor);
            return decoder.DecodeToBytes(latents);
        }, cancellationToken).ConfigureAwait(false);
        progress?.Report(new StageProgress("StageA", 1, 1, DateTimeOffset.UtcNow));

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

    private static IReadOnlyList<string>? NegativePrompts(GenerationBatch batch) =>
        batch.Items.All(i => i.NegativePrompt is null) ? null : batch.Items.Select(i => i.NegativePrompt ?? "").ToArray();

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
