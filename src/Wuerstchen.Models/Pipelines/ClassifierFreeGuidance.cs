using static TorchSharp.torch;

namespace Wuerstchen.Models.Pipelines;

/// <summary>The [conditional, unconditional] batch trick both pipelines use (upstream: pipeline_wuerstchen_prior.py and pipeline_wuerstchen.py, <c>torch.cat([latents] * 2)</c> and <c>torch.lerp</c>; docs/upstream.md).</summary>
internal static class ClassifierFreeGuidance
{
    /// <summary>Guidance is on when the scale exceeds 1, as in the reference.</summary>
    public static bool IsOn(double scale) => scale > 1;

    /// <summary>ε_unc + w·(ε_cond − ε_unc), from a prediction whose first half is conditional.</summary>
    public static Tensor Combine(Tensor prediction, double scale)
    {
        var halves = prediction.chunk(2);
        return halves[1].lerp(halves[0], scale);
    }
}
