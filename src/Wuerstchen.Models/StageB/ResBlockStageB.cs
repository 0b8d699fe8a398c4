using TorchSharp;
using TorchSharp.Modules;
using Wuerstchen.Models.Blocks;
using static TorchSharp.torch;

namespace Wuerstchen.Models.StageB;

/// <summary>
/// Stage B's ConvNeXt-style block (upstream: modeling_wuerstchen_diffnext.py, ResBlockStageB). Unlike Stage C's <see cref="ResBlock"/>, the skip joins <em>after</em> the
/// depthwise conv and channel LayerNorm, so only the first Linear is widened: depthwise conv(c) → LN → [· ; skip] →
/// Linear(4c) → GELU → GRN → Dropout → Linear(c), plus the residual.
/// </summary>
public sealed class ResBlockStageB : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly Conv2d depthwise;
    private readonly WuerstchenLayerNorm norm;
    private readonly ChannelwiseMlp channelwise;

    public ResBlockStageB(long c, long cSkip = 0, long kernelSize = 3, double dropout = 0, Device? device = null, ScalarType? dtype = null)
        : base(nameof(ResBlockStageB))
    {
        depthwise = nn.Conv2d(c, c, kernelSize, padding: kernelSize / 2, groups: c, device: device, dtype: dtype);
        norm = new WuerstchenLayerNorm(c);
        channelwise = new ChannelwiseMlp(c + cSkip, c, dropout, device, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, Tensor? skip) => Forward(x, skip is null ? [] : [skip]);

    /// <summary>The block with its skip given in parts (e.g. the U-Net skip and the mapped effnet), joined in order.</summary>
    public Tensor Forward(Tensor x, IReadOnlyList<Tensor> skips)
    {
        using var scope = NewDisposeScope();
        var hidden = norm.ChannelsLast(depthwise.forward(x));
        if (skips.Count > 0)
            hidden = cat([hidden, .. skips.Select(s => s.permute(0, 2, 3, 1))], dim: 3);
        hidden = channelwise.forward(hidden).permute(0, 3, 1, 2);
        return hidden.add_(x).MoveToOuterDisposeScope(); // into the MLP's fresh output (its backward does not need it)
    }
}
