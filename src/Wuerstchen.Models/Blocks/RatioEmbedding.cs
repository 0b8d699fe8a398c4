using TorchSharp;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Blocks;

/// <summary>The sinusoidal embedding of the diffusion ratio r ∈ [0, 1] shared by Stage C and Stage B (upstream: modeling_wuerstchen_prior.py and modeling_wuerstchen_diffnext.py, <c>gen_r_embedding</c>).</summary>
public static class RatioEmbedding
{
    private const double MaxPositions = 10000;

    /// <param name="r">(B,) ratios.</param>
    /// <param name="width">c_r, the embedding width.</param>
    /// <returns>(B, width): [sin(r·10⁴·fᵢ) ; cos(r·10⁴·fᵢ)], fᵢ = exp(−i·ln(10⁴)/(half − 1)), in r's dtype.</returns>
    public static Tensor Generate(Tensor r, long width)
    {
        using var scope = NewDisposeScope();
        // The reference scales r by 10⁴ in r's dtype; a bfloat16 r would leave the sinusoids meaningless, so the
        // product is taken in float32 (identical for float32 models; the pipelines keep r in float32 throughout).
        var scaled = r.to(float32) * MaxPositions;
        long half = width / 2;
        double step = Math.Log(MaxPositions) / (half - 1);
        var frequencies = arange(half, device: r.device).to(float32).mul(-step).exp();
        var angles = scaled[.., TensorIndex.None] * frequencies[TensorIndex.None, ..];
        var embedding = cat([angles.sin(), angles.cos()], dim: 1);
        if (width % 2 == 1)
            embedding = nn.functional.pad(embedding, [0, 1], PaddingModes.Constant);
        return embedding.to(r.dtype).MoveToOuterDisposeScope();
    }
}
