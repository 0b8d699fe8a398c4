using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Blocks;

/// <summary>
/// The per-pixel MLP of the ConvNeXt-style blocks on NHWC features: Linear(4c) → GELU → GRN → Dropout → Linear(c), with
/// the reference's <c>nn.Sequential</c> keys <c>0</c> (Linear), <c>2</c> (GRN) and <c>4</c> (Linear); the GELU (1) and the
/// dropout (3) have no weights. Written out rather than a <c>Sequential</c> so that inference issues no dropout call.
/// </summary>
public sealed class ChannelwiseMlp : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "0")]
    private readonly Linear up;

    [ComponentName(Name = "2")]
    private readonly GlobalResponseNorm norm;

    [ComponentName(Name = "3")]
    private readonly SeededDropout dropout;

    [ComponentName(Name = "4")]
    private readonly Linear down;

    public ChannelwiseMlp(long inChannels, long c, double dropoutProbability, Device? device = null, ScalarType? dtype = null) : base(nameof(ChannelwiseMlp))
    {
        up = nn.Linear(inChannels, c * 4, device: device, dtype: dtype);
        norm = new GlobalResponseNorm(c * 4, device, dtype);
        dropout = new SeededDropout(dropoutProbability);
        down = nn.Linear(c * 4, c, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var hidden = norm.forward(nn.functional.gelu(up.forward(x)));
        if (dropout.training)
            hidden = dropout.forward(hidden);
        return down.forward(hidden).MoveToOuterDisposeScope();
    }
}
