using TorchSharp;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Blocks;

/// <summary>LayerNorm over the channel dimension of an NCHW tensor, affine-free, eps 1e-6 (spec §1.1). No parameters.</summary>
public sealed class WuerstchenLayerNorm : nn.Module<Tensor, Tensor>
{
    private readonly long[] _channels;

    public WuerstchenLayerNorm(long channels) : base(nameof(WuerstchenLayerNorm))
    {
        _channels = [channels];
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var nhwc = x.permute(0, 2, 3, 1);
        using var normed = nn.functional.layer_norm(nhwc, _channels, eps: 1e-6);
        return normed.permute(0, 3, 1, 2);
    }
}
