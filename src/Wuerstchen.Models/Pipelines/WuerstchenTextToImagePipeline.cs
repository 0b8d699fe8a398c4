using TorchSharp;
using Wuerstchen.Models.Schedulers;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Pipelines;

/// <summary>The whole cascade in one process (diffusers' <c>WuerstchenCombinedPipeline</c>, upstream: pipeline_wuerstchen_combined.py).</summary>
public sealed class WuerstchenTextToImagePipeline(WuerstchenPriorPipeline prior, WuerstchenDecoderPipeline decoder) : IDisposable
{
    public WuerstchenPriorPipeline Prior { get; } = prior;

    public WuerstchenDecoderPipeline Decoder { get; } = decoder;

    /// <summary>
    /// Images (N, 3, H, W) in [0, 1], prompt-major. Each stage draws from its own noise stream, so a stage can be
    /// re-run (another decoder seed, say) without replaying the other.
    /// </summary>
    public Tensor Generate(TextToImageSettings settings, INoiseSource priorNoise, INoiseSource decoderNoise, Action<SamplingStep>? onStep = null, CancellationToken cancellationToken = default)
    {
        settings.Validate();
        using var scope = NewDisposeScope();
        var embeddings = Prior.Generate(settings.ForPrior(), priorNoise, onStep, cancellationToken);
        var latents = Decoder.Generate(embeddings, settings.ForDecoder(), decoderNoise, onStep, cancellationToken);
        cancellationToken.ThrowIfCancellationRequested();
        return Decoder.Decode(latents).MoveToOuterDisposeScope();
    }

    /// <summary>Images for a seed: Stage C draws from <paramref name="seed"/>, Stage B from <see cref="DecoderSeedFor"/> unless given.</summary>
    public Tensor Generate(TextToImageSettings settings, ulong seed, ulong? decoderSeed = null, Action<SamplingStep>? onStep = null, CancellationToken cancellationToken = default)
    {
        using var priorNoise = new SeededNoise(seed);
        using var decoderNoise = new SeededNoise(decoderSeed ?? DecoderSeedFor(seed));
        return Generate(settings, priorNoise, decoderNoise, onStep, cancellationToken);
    }

    /// <summary>The Stage B seed that goes with a Stage C seed: the next one, so the two streams differ (the reference fixtures' convention).</summary>
    public static ulong DecoderSeedFor(ulong seed) => unchecked(seed + 1);

    public void Dispose()
    {
        Prior.Dispose();
        Decoder.Dispose();
    }
}
