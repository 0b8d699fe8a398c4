using TorchSharp;
using Wuerstchen.Models.Loading;
using Wuerstchen.Models.Schedulers;
using Wuerstchen.Models.StageC;
using Wuerstchen.Models.Text;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Pipelines;

/// <summary>
/// diffusers' <c>WuerstchenPriorPipeline</c> (upstream: pipeline_wuerstchen_prior.py): text → CLIP-bigG states → Stage C sampling with
/// classifier-free guidance → image embeddings (<c>latents·latent_mean − latent_std</c>).
/// </summary>
public sealed class WuerstchenPriorPipeline : IDisposable
{
    public const string StageName = "StageC";

    public WuerstchenPriorPipeline(ClipPromptEncoder textEncoder, WuerstchenPrior prior, DdpmWuerstchenScheduler scheduler,
        double resolutionMultiple, double latentMean, double latentStd, InferenceOptions options)
    {
        TextEncoder = textEncoder;
        Prior = prior;
        Scheduler = scheduler;
        ResolutionMultiple = resolutionMultiple;
        LatentMean = latentMean;
        LatentStd = latentStd;
        Options = options;
    }

    public ClipPromptEncoder TextEncoder { get; }

    public WuerstchenPrior Prior { get; }

    public DdpmWuerstchenScheduler Scheduler { get; }

    public double ResolutionMultiple { get; }

    public double LatentMean { get; }

    public double LatentStd { get; }

    public InferenceOptions Options { get; }

    /// <summary>Loads a <c>warp-ai/wuerstchen-prior</c>-layout folder.</summary>
    public static WuerstchenPriorPipeline FromRepository(ModelRepository repository, InferenceOptions? options = null)
    {
        var (index, validated, textEncoder, scheduler) = PipelineFolder.Open(repository, options, "prior", "WuerstchenPriorPipeline",
            "prior", "text_encoder", "tokenizer", "scheduler");
        var prior = WuerstchenPrior.FromComponent(repository.Component("prior"), validated.DType, validated.Variant, validated.Device);
        return new WuerstchenPriorPipeline(textEncoder, prior, scheduler,
            index.GetNumber("resolution_multiple"), index.GetNumber("latent_mean"), index.GetNumber("latent_std"), validated);
    }

    /// <summary>The Stage C latent size for an image size: ⌈size / resolution_multiple⌉.</summary>
    public (long Height, long Width) LatentSize(int height, int width) =>
        ((long)Math.Ceiling(height / ResolutionMultiple), (long)Math.Ceiling(width / ResolutionMultiple));

    /// <summary>
    /// Samples image embeddings (B·n, c_in, h, w) for the prompts, drawing the initial latents and each step's noise
    /// from <paramref name="noise"/> in the reference's order. Rows are prompt-major: all images of prompt 0 first.
    /// </summary>
    public Tensor Generate(PriorGenerationSettings settings, INoiseSource noise, Action<SamplingStep>? onStep = null, CancellationToken cancellationToken = default)
    {
        settings.Validate();
        long batch = settings.ImageCounts.Sum();
        return StageOutOfMemoryException.Guard("Stage C", settings.Width, settings.Height, batch, Options.Device,
            () => Sample(settings, noise, onStep, cancellationToken));
    }

    private Tensor Sample(PriorGenerationSettings settings, INoiseSource noise, Action<SamplingStep>? onStep, CancellationToken cancellationToken)
    {
        using var scope = NewDisposeScope();
        using var inference = inference_mode();
        bool guided = ClassifierFreeGuidance.IsOn(settings.GuidanceScale);
        var counts = settings.ImageCounts;
        var text = RepeatRows(TextEncoder.Encode(settings.Prompts), counts);
        if (guided)
        {
            var negatives = ExpandNegatives(settings.NegativePrompts, settings.Prompts.Count);
            text = cat([text, RepeatRows(TextEncoder.Encode(negatives), counts)]);
        }
        // The text's part of every step, once per generation.
        var condition = Prior.MapCondition(text.to(Options.DType));

        Scheduler.SetTimesteps(settings.Timesteps, settings.Steps);

        var (latentHeight, latentWidth) = LatentSize(settings.Height, settings.Width);
        long batch = counts.Sum();
        var latents = DenoisingLoop.Run(Scheduler, [batch, Prior.Config.CIn, latentHeight, latentWidth], (x, r) => Prior.Forward(x, r, condition),
            settings.GuidanceScale, noise, Options, StageName, onStep, cancellationToken);
        return (latents * LatentMean - LatentStd).MoveToOuterDisposeScope();
    }

    /// <summary>Row i repeated <c>counts[i]</c> times, in order.</summary>
    internal static Tensor RepeatRows(Tensor rows, IReadOnlyList<int> counts)
    {
        if (counts.All(c => c == counts[0]))
            return rows.repeat_interleave(counts[0], dim: 0);
        using var repeats = tensor(counts.Select(c => (long)c).ToArray(), device: rows.device);
        return rows.repeat_interleave(repeats, dim: 0, output_size: counts.Sum());
    }

    internal static IReadOnlyList<string> ExpandNegatives(IReadOnlyList<string>? negatives, int count) =>
        negatives is null ? Enumerable.Repeat("", count).ToArray()
        : negatives.Count == 1 ? Enumerable.Repeat(negatives[0], count).ToArray()
        : negatives;

    public void Dispose()
    {
        TextEncoder.Dispose();
        Prior.Dispose();
    }
}
