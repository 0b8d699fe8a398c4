using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Blocks;

/// <summary>
/// Stage C's ConvNeXt-style block (upstream: modeling_wuerstchen_common.py, ResBlock): depthwise conv over [x ; skip] → channel LayerNorm →
/// Linear(4c) → GELU → GRN → Dropout → Linear(c), plus the residual.
/// </summary>
public sealed class ResBlock : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly Conv2d depthwise;
    private readonly WuerstchenLayerNorm norm;
    private readonly ChannelwiseMlp channelwise;

    public ResBlock(long c, long cSkip = 0, long kernelSize = 3, double dropout = 0, Device? device = null, ScalarType? dtype = null) : base(nameof(ResBlock))
    {
        depthwise = nn.Conv2d(c + cSkip, c, kernelSize, padding: kernelSize / 2, groups: c, device: device, dtype: dtype);
        norm = new WuerstchenLayerNorm(c);
        channelwise = new ChannelwiseMlp(c, c, dropout, device, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, Tensor? skip)
    {
        using var scope = NewDisposeScope();
        var input = skip is null ? x : cat([x, skip], dim: 1);
        var hidden = channelwise.forward(norm.ChannelsLast(depthwise.forward(input))).permute(0, 3, 1, 2);
        return hidden.add_(x).MoveToOuterDisposeScope(); // into the MLP's fresh output (its backward does not need it)
    }
}
