using TorchSharp;
using Wuerstchen.Models.Loading;
using Wuerstchen.Models.Schedulers;
using Wuerstchen.Models.StageA;
using Wuerstchen.Models.StageB;
using Wuerstchen.Models.Text;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Pipelines;

/// <summary>
/// diffusers' <c>WuerstchenDecoderPipeline</c> (upstream: pipeline_wuerstchen.py): image embeddings + CLIP-H text → Stage B sampling
/// (guidance with a zero effnet for the unconditional half) → Stage A decode of <c>scale·latents</c>, clamped to [0, 1].
/// </summary>
public sealed class WuerstchenDecoderPipeline : IDisposable
{
    public const string StageName = "StageB";

    public WuerstchenDecoderPipeline(ClipPromptEncoder textEncoder, WuerstchenDiffNeXt decoder, PaellaVQModel vqgan,
        DdpmWuerstchenScheduler scheduler, double latentDimScale, InferenceOptions options)
    {
        TextEncoder = textEncoder;
        Decoder = decoder;
        Vqgan = vqgan;
        Scheduler = scheduler;
        LatentDimScale = latentDimScale;
        Options = options;
    }

    public ClipPromptEncoder TextEncoder { get; }

    public WuerstchenDiffNeXt Decoder { get; }

    public PaellaVQModel Vqgan { get; }

    public DdpmWuerstchenScheduler Scheduler { get; }

    public double LatentDimScale { get; }

    public InferenceOptions Options { get; }

    /// <summary>Loads a <c>warp-ai/wuerstchen</c>-layout folder.</summary>
    public static WuerstchenDecoderPipeline FromRepository(ModelRepository repository, InferenceOptions? options = null)
    {
        var (index, validated, textEncoder, scheduler) = PipelineFolder.Open(repository, options, "decoder", "WuerstchenDecoderPipeline",
            "decoder", "vqgan", "text_encoder", "tokenizer", "scheduler");
        var decoder = WuerstchenDiffNeXt.FromComponent(repository.Component("decoder"), validated.DType, validated.Variant, validated.Device);
        var vqgan = PaellaVQModel.FromComponent(repository.Component("vqgan"), validated.DType, validated.Variant, validated.Device);
        return new WuerstchenDecoderPipeline(textEncoder, decoder, vqgan, scheduler, index.GetNumber("latent_dim_scale"), validated);
    }

    /// <summary>The Stage B latent size for a Stage C latent size: ⌊size · latent_dim_scale⌋.</summary>
    public (long Height, long Width) LatentSize(long embeddingHeight, long embeddingWidth) =>
        ((long)(embeddingHeight * LatentDimScale), (long)(embeddingWidth * LatentDimScale));

    /// <summary>
    /// Samples Stage B latents for <paramref name="imageEmbeddings"/> (E, 16, h, w); image i uses prompt i / (E / P).
    /// Returns (E·n, c_in, ⌊h·10.67⌋, ⌊w·10.67⌋), drawing noise from <paramref name="noise"/> in the reference's order.
    /// </summary>
    public Tensor Generate(Tensor imageEmbeddings, DecoderGenerationSettings settings, INoiseSource noise, Action<SamplingStep>? onStep = null, CancellationToken cancellationToken = default)
    {
        long embeddingCount = imageEmbeddings.shape[0];
        settings.Validate(embeddingCount);
        var (latentHeight, latentWidth) = LatentSize(imageEmbeddings.shape[2], imageEmbeddings.shape[3]);
        int granularity = Decoder.Config.SpatialGranularity;
        if (latentHeight % granularity != 0 || latentWidth % granularity != 0)
            throw new ArgumentException(
                $"Image embeddings of {imageEmbeddings.shape[2]}×{imageEmbeddings.shape[3]} give a Stage B latent of {latentHeight}×{latentWidth}, " +
                $"which the decoder cannot take (both sides must be multiples of {granularity}); image sizes must lie on the 128-pixel grid.", nameof(imageEmbeddings));

        long images = embeddingCount * settings.ImagesPerEmbedding;
        var (imageHeight, imageWidth) = ImageSize(latentHeight, latentWidth);
        return StageOutOfMemoryException.Guard("Stage B", (int)imageWidth, (int)imageHeight, images, Options.Device,
            () => Sample(imageEmbeddings, settings, latentHeight, latentWidth, noise, onStep, cancellationToken));
    }

    private Tensor Sample(Tensor imageEmbeddings, DecoderGenerationSettings settings, long latentHeight, long latentWidth, INoiseSource noise,
        Action<SamplingStep>? onStep, CancellationToken cancellationToken)
    {
        using var scope = NewDisposeScope();
        using var inference = inference_mode();
        bool guided = ClassifierFreeGuidance.IsOn(settings.GuidanceScale);
        long embeddingCount = imageEmbeddings.shape[0];
        int n = settings.ImagesPerEmbedding;
        var rowsOfPrompt = (settings.EmbeddingsOfPrompt ?? Enumerable.Repeat((int)(embeddingCount / settings.Prompts.Count), settings.Prompts.Count))
            .Select(rows => rows * n).ToArray();

        var effnet = imageEmbeddings.to(Options.DType, Options.Device).repeat_interleave(n, dim: 0);
        var text = WuerstchenPriorPipeline.RepeatRows(TextEncoder.Encode(settings.Prompts), rowsOfPrompt);
        if (guided)
        {
            var negatives = WuerstchenPriorPipeline.ExpandNegatives(settings.NegativePrompts, settings.Prompts.Count);
            text = cat([text, WuerstchenPriorPipeline.RepeatRows(TextEncoder.Encode(negatives), rowsOfPrompt)]);
            effnet = cat([effnet, zeros_like(effnet)]);
        }
        // The text and effnet part of every step (clip_mapper, kv_mapper, the effnet resizes and mappers), once per generation.
        var condition = Decoder.MapCondition(effnet, text.to(Options.DType), latentHeight, latentWidth);

        Scheduler.SetTimesteps(settings.Timesteps, settings.Steps);

        var latents = DenoisingLoop.Run(Scheduler, [embeddingCount * n, Decoder.Config.CIn, latentHeight, latentWidth],
            (x, r) => Decoder.Forward(x, r, condition), settings.GuidanceScale, noise, Options, StageName, onStep, cancellationToken);
        return latents.MoveToOuterDisposeScope();
    }

    /// <summary>The image size Stage A makes of Stage B latents of this size: the VQGAN's upscaling of each side.</summary>
    public (long Height, long Width) ImageSize(long latentHeight, long latentWidth)
    {
        long scale = Vqgan.Config.UpDownScaleFactor << (Vqgan.Config.Levels - 1);
        return (latentHeight * scale, latentWidth * scale);
    }

    /// <summary>Stage A: <c>vqgan.decode(scale · latents)</c> without quantisation, clamped to [0, 1]; (N, 3, H, W) float32 on the CPU.</summary>
    public Tensor Decode(Tensor latents) => DecodeOnDevice(latents, images => images.to(float32));

    /// <summary>
    /// Stage A straight to 8-bit pixels, (N, H, W, 3) bytes on the CPU: the decode, then <see cref="Imaging.PngImages.ToBytes"/>'s
    /// conversion (float32, ×255, round) on the device, so only the bytes, a quarter of the floats, cross to the host.
    /// </summary>
    public Tensor DecodeToBytes(Tensor latents) => DecodeOnDevice(latents, Imaging.PngImages.ToBytesOnDevice);

    /// <summary>Decodes in chunks of <see cref="InferenceOptions.DecodeBatch"/> images (all at once without it); each chunk's result comes to the host.</summary>
    private Tensor DecodeOnDevice(Tensor latents, Func<Tensor, Tensor> finish)
    {
        var (height, width) = ImageSize(latents.shape[2], latents.shape[3]);
        long count = latents.shape[0], chunk = Options.DecodeBatch ?? count;
        return StageOutOfMemoryException.Guard("Stage A", (int)width, (int)height, count, Options.Device, () =>
        {
            using var scope = NewDisposeScope();
            using var inference = inference_mode();
            var parts = new List<Tensor>();
            for (long start = 0; start < count; start += chunk)
            {
                var part = latents.narrow(0, start, Math.Min(chunk, count - start));
                var images = Vqgan.Decode(part.to(Options.DType, Options.Device) * Vqgan.ScaleFactor).clamp(0, 1);
                parts.Add(finish(images).cpu());
            }
            return (parts.Count == 1 ? parts[0] : cat(parts)).MoveToOuterDisposeScope();
        });
    }

    public void Dispose()
    {
        TextEncoder.Dispose();
        Decoder.Dispose();
        Vqgan.Dispose();
    }
}
