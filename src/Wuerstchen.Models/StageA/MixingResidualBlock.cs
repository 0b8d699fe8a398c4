using TorchSharp;
using TorchSharp.Modules;
using Wuerstchen.Models.Blocks;
using static TorchSharp.torch;

namespace Wuerstchen.Models.StageA;

/// <summary>
/// The VQGAN's residual block (upstream: modeling_paella_vq_model.py, MixingResidualBlock): an edge-padded 3×3 depthwise conv and a per-pixel MLP, each after an
/// affine-free channel LayerNorm and modulated by the six learned scalars <c>gammas</c>.
/// </summary>
public sealed class MixingResidualBlock : nn.Module<Tensor, Tensor>
{
    private readonly WuerstchenLayerNorm norm1;
    private readonly Sequential depthwise;
    private readonly WuerstchenLayerNorm norm2;
    private readonly Sequential channelwise;
    private readonly Parameter gammas;

    public MixingResidualBlock(long channels, long embedDim, Device? device = null, ScalarType? dtype = null) : base(nameof(MixingResidualBlock))
    {
        norm1 = new WuerstchenLayerNorm(channels);
        depthwise = nn.Sequential(nn.ReplicationPad2d(1), nn.Conv2d(channels, channels, 3, groups: channels, device: device, dtype: dtype));
        norm2 = new WuerstchenLayerNorm(channels);
        channelwise = nn.Sequential(
            nn.Linear(channels, embedDim, device: device, dtype: dtype), nn.GELU(), nn.Linear(embedDim, channels, device: device, dtype: dtype));
        gammas = nn.Parameter(zeros(6, dtype: dtype, device: device));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var g = gammas;
        var mixed = norm1.forward(x) * (1 + g[0]) + g[1];
        x = x + depthwise.forward(mixed) * g[2];
        mixed = norm2.forward(x) * (1 + g[3]) + g[4];
        x = x + channelwise.forward(mixed.permute(0, 2, 3, 1)).permute(0, 3, 1, 2) * g[5];
        return x.MoveToOuterDisposeScope();
    }
}
