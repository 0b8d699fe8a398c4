using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Blocks;

/// <summary>
/// ConvNeXt-V2 global response normalisation on NHWC input; gamma and beta are (1, 1, 1, C) (upstream: modeling_wuerstchen_common.py, GlobalResponseNorm).
/// The reference computes <c>γ·(x·N) + β + x</c> with N = ‖x‖₂ over H, W divided by its channel mean: about eight
/// kernels over the widest activation of every block. This computes the same thing as <c>β + x·(γ·N + 1)</c>: the
/// scale is a small (B, 1, 1, C) tensor and the activation is read once, by one <c>addcmul</c>. In float32 the two
/// agree to rounding (the parity cases hold unchanged); in bfloat16 both round differently at every step, and the
/// result stays within <see cref="BFloat16Tolerance"/> of the reference formula computed in float64.
/// </summary>
public sealed class GlobalResponseNorm : nn.Module<Tensor, Tensor>
{
    /// <summary>
    /// Max |this − reference formula in float64| over max |reference|, both in bfloat16: one bfloat16 rounding of the
    /// scale and one of the output (2⁻⁸ each) with headroom. Checked by GlobalResponseNormTests.
    /// </summary>
    public const double BFloat16Tolerance = 1.6e-2;

    private static readonly Scalar One = 1.ToScalar();
    private static readonly Scalar Epsilon = 1e-6.ToScalar();

    private readonly Parameter gamma;
    private readonly Parameter beta;

    public GlobalResponseNorm(long dim, Device? device = null, ScalarType? dtype = null) : base(nameof(GlobalResponseNorm))
    {
        gamma = nn.Parameter(zeros(1, 1, 1, dim, dtype: dtype, device: device));
        beta = nn.Parameter(zeros(1, 1, 1, dim, dtype: dtype, device: device));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        // Small (B, 1, 1, C) temporaries, freed here; out of place throughout, as training differentiates through them.
        using var aggregate = L2NormOverSpace(x);
        using var mean = aggregate.mean([-1], keepdim: true);
        using var divisor = mean.add(Epsilon);
        using var normalised = aggregate.div(divisor);
        using var scaled = normalised.mul(gamma);
        using var scale = scaled.add(One);
        return beta.addcmul(x, scale, One);
    }

    /// <summary>
    /// ‖x‖₂ over H and W, keeping dims. LibTorch's CPU norm kernel reduces over dimensions that are not innermost with its
    /// generic, unvectorised loop, 5–8× slower than a sum there; so float32 on a CPU takes √Σx² through the vectorised sum
    /// (the same value up to the order of the additions). Elsewhere, and for reduced precision (whose squares would round
    /// before the sum), the norm kernel it is.
    /// </summary>
    internal static Tensor L2NormOverSpace(Tensor x)
    {
        if (x.device_type != DeviceType.CPU || x.dtype != ScalarType.Float32)
            return linalg.vector_norm(x, ord: 2, dims: [1, 2], keepdim: true);
        using var squares = x.square();
        using var sum = squares.sum([1, 2], keepdim: true);
        return sum.sqrt();
    }

    /// <summary>The reference's formula, term by term (diffusers' <c>GlobalResponseNorm.forward</c>); for tests.</summary>
    public static Tensor Reference(Tensor x, Tensor gamma, Tensor beta)
    {
        using var scope = NewDisposeScope();
        var aggregate = linalg.vector_norm(x, ord: 2, dims: [1, 2], keepdim: true);
        var normalised = aggregate / (aggregate.mean([-1], keepdim: true) + 1e-6);
        return (gamma * (x * normalised) + beta + x).MoveToOuterDisposeScope();
    }
}
