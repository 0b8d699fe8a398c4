using TorchSharp;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Blocks;

/// <summary>LayerNorm over the channel dimension of an NCHW tensor, affine-free, eps 1e-6 (upstream: modeling_wuerstchen_common.py, WuerstchenLayerNorm). No parameters.</summary>
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
        using var normed = ChannelsLast(x);
        return normed.permute(0, 3, 1, 2);
    }

    /// <summary>
    /// <paramref name="x"/> (N, C, H, W) stored channels last (strides of NHWC), the layout the blocks keep their activations
    /// in: the norms' and MLPs' permutes become views, and convolutions run on it without reordering.
    /// </summary>
    public static Tensor ToChannelsLast(Tensor x)
    {
        using var nhwc = x.permute(0, 2, 3, 1);
        using var packed = nhwc.contiguous();
        return packed.permute(0, 3, 1, 2);
    }

    /// <summary>The normalised NCHW input as (N, H, W, C): the layout the per-pixel Linear layers that follow want anyway.</summary>
    public Tensor ChannelsLast(Tensor x)
    {
        using var nhwc = x.permute(0, 2, 3, 1);
        return nn.functional.layer_norm(nhwc, _channels, eps: 1e-6);
    }
}
