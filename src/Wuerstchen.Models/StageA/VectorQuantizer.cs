using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Wuerstchen.Models.StageA;

/// <summary>
/// diffusers' <c>VectorQuantizer</c> as the VQGAN configures it (no index remapping): each pixel's latent vector is
/// replaced by its nearest codebook row in Euclidean distance. Key: <c>embedding.weight</c> (codes, dim).
/// </summary>
public sealed class VectorQuantizer : nn.Module<Tensor, (Tensor Quantized, Tensor Indices)>
{
    private readonly Embedding embedding;

    public VectorQuantizer(long codes, long dim, Device? device = null, ScalarType? dtype = null) : base(nameof(VectorQuantizer))
    {
        embedding = nn.Embedding(codes, dim, device: device, dtype: dtype);
        using (no_grad())
            nn.init.uniform_(embedding.weight!, -1.0 / codes, 1.0 / codes);
        RegisterComponents();
    }

    /// <param name="z">(B, dim, h, w) latents.</param>
    /// <returns>
    /// The quantised latents (B, dim, h, w), as the straight-through estimate <c>z + (z_q − z).detach()</c> (gradients
    /// pass to <paramref name="z"/> unchanged), and the chosen code of every pixel, int64, flat in (B, h, w) order.
    /// </returns>
    public override (Tensor Quantized, Tensor Indices) forward(Tensor z)
    {
        using var scope = NewDisposeScope();
        var nhwc = z.permute(0, 2, 3, 1).contiguous();
        var codebook = embedding.weight!;
        // The same libtorch cdist as the reference, so near-ties resolve to the same code.
        var indices = cdist(nhwc.view(-1, codebook.shape[1]), codebook).argmin(1);
        var nearest = embedding.forward(indices).view(nhwc.shape);
        var quantized = (nhwc + (nearest - nhwc).detach()).permute(0, 3, 1, 2).contiguous();
        return (quantized.MoveToOuterDisposeScope(), indices.MoveToOuterDisposeScope());
    }
}
