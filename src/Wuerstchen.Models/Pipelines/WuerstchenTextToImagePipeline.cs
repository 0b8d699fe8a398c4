using TorchSharp;
using Wuerstchen.Models.Schedulers;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Pipelines;

/// <summary>The whole cascade in one process (diffusers' <c>WuerstchenCombinedPipeline</c>, spec §7.3).</summary>
public sealed class WuerstchenTextToImagePipeline(WuerstchenPriorPipeline prior, WuerstchenDecoderPipeline decoder) : IDisposable
{
    public WuerstchenPriorPipeline Prior { get; } = prior;

    public WuerstchenDecoderPipeline Decoder { get; } = decoder;

    /// <summary>Images (N, 3, H, W) in [0, 1], prompt-major; both stages draw from <paramref name="noise"/> in turn.</summary>
    public Tensor Generate(TextToImageSettings settings, INoiseSource noise, Action<SamplingStep>? onStep = null, CancellationToken cancellationToken = default)
    {
        settings.Validate();
        using var scope = NewDisposeScope();
        var embeddings = Prior.Generate(settings.ForPrior(), noise, onStep, cancellationToken);
        var latents = Decoder.Generate(embeddings, settings.ForDecoder(), noise, onStep, cancellationToken);
        cancellationToken.ThrowIfCancellationRequested();
        return Decoder.Decode(latents).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        Prior.Dispose();
        Decoder.Dispose();
    }
}
