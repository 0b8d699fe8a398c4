using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Effnet;

/// <summary>
/// torchvision's <c>efficientnet_v2_s().features</c> (torchvision <c>torchvision/models/efficientnet.py</c>, as upstream modeling_efficient_net_encoder.py uses it), as a <see cref="Sequential"/> with torchvision's keys:
/// <c>0</c> stem conv, <c>1</c>–<c>6</c> stages of FusedMBConv/MBConv blocks (<c>{stage}.{block}.block.{j}…</c>),
/// <c>7</c> the 1×1 head conv. BatchNorm eps 1e-3, SiLU; stochastic depth is the identity at inference.
/// </summary>
public static class EfficientNetV2Features
{
    public const int OutputChannels = 1280;

    internal const double BatchNormEps = 1e-3;

    /// <summary>torchvision's table for V2-S (EfficientNetV2 paper, table 4).</summary>
    private static readonly StageSpec[] V2S =
    [
        new(Fused: true, Expand: 1, Kernel: 3, Stride: 1, In: 24, Out: 24, Layers: 2),
        new(Fused: true, Expand: 4, Kernel: 3, Stride: 2, In: 24, Out: 48, Layers: 4),
        new(Fused: true, Expand: 4, Kernel: 3, Stride: 2, In: 48, Out: 64, Layers: 4),
        new(Fused: false, Expand: 4, Kernel: 3, Stride: 2, In: 64, Out: 128, Layers: 6),
        new(Fused: false, Expand: 6, Kernel: 3, Stride: 1, In: 128, Out: 160, Layers: 9),
        new(Fused: false, Expand: 6, Kernel: 3, Stride: 2, In: 160, Out: 256, Layers: 15),
    ];

    /// <summary>(B, 3, H, W) normalised pixels → (B, 1280, ⌈H/32⌉, ⌈W/32⌉).</summary>
    public static Sequential CreateV2S()
    {
        var layers = new List<nn.Module<Tensor, Tensor>> { ConvNormActivation(3, V2S[0].In, 3, stride: 2) };
        foreach (var stage in V2S)
        {
            var blocks = new List<nn.Module<Tensor, Tensor>>();
            for (int i = 0; i < stage.Layers; i++)
            {
                // Only a stage's first block changes the width and the resolution.
                long input = i == 0 ? stage.In : stage.Out;
                long stride = i == 0 ? stage.Stride : 1;
                blocks.Add(stage.Fused
                    ? new FusedMBConv(input, stage.Out, stage.Expand, stage.Kernel, stride)
                    : new MBConv(input, stage.Out, stage.Expand, stage.Kernel, stride));
            }
            layers.Add(nn.Sequential(blocks.ToArray()));
        }
        layers.Add(ConvNormActivation(V2S[^1].Out, OutputChannels, 1));
        return nn.Sequential(layers.ToArray());
    }

    /// <summary>torchvision's <c>Conv2dNormActivation</c>: <c>0</c> conv without bias ("same" padding), <c>1</c> BatchNorm, <c>2</c> SiLU unless <paramref name="activation"/> is false.</summary>
    internal static Sequential ConvNormActivation(long inChannels, long outChannels, long kernel, long stride = 1, long groups = 1, bool activation = true)
    {
        var conv = nn.Conv2d(inChannels, outChannels, kernel, stride: stride, padding: (kernel - 1) / 2, groups: groups, bias: false);
        var norm = nn.BatchNorm2d(outChannels, eps: BatchNormEps);
        return activation ? nn.Sequential(conv, norm, nn.SiLU()) : nn.Sequential(conv, norm);
    }

    /// <summary>torchvision's <c>_make_divisible(v, 8)</c>: the nearest multiple of 8, never below 8 or 90 % of v.</summary>
    internal static long MakeDivisible(double value, long divisor = 8)
    {
        long rounded = Math.Max(divisor, (long)(value + divisor / 2.0) / divisor * divisor);
        return rounded < 0.9 * value ? rounded + divisor : rounded;
    }

    private sealed record StageSpec(bool Fused, int Expand, int Kernel, int Stride, int In, int Out, int Layers);
}

/// <summary>torchvision's <c>FusedMBConv</c>: a k×k expansion conv (+ 1×1 projection when expanding) and the residual when shapes allow.</summary>
internal sealed class FusedMBConv : nn.Module<Tensor, Tensor>
{
    private readonly Sequential block;
    private readonly bool _residual;

    public FusedMBConv(long inChannels, long outChannels, int expandRatio, long kernel, long stride) : base(nameof(FusedMBConv))
    {
        _residual = stride == 1 && inChannels == outChannels;
        long expanded = EfficientNetV2Features.MakeDivisible(inChannels * expandRatio);
        block = expanded != inChannels
            ? nn.Sequential(
                EfficientNetV2Features.ConvNormActivation(inChannels, expanded, kernel, stride),
                EfficientNetV2Features.ConvNormActivation(expanded, outChannels, 1, activation: false))
            : nn.Sequential(EfficientNetV2Features.ConvNormActivation(inChannels, outChannels, kernel, stride));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var result = block.forward(x);
        return (_residual ? result.add_(x) : result).MoveToOuterDisposeScope();
    }
}

/// <summary>torchvision's <c>MBConv</c>: 1×1 expansion, k×k depthwise, squeeze-and-excitation, 1×1 projection, residual when shapes allow.</summary>
internal sealed class MBConv : nn.Module<Tensor, Tensor>
{
    private readonly Sequential block;
    private readonly bool _residual;

    public MBConv(long inChannels, long outChannels, int expandRatio, long kernel, long stride) : base(nameof(MBConv))
    {
        _residual = stride == 1 && inChannels == outChannels;
        long expanded = EfficientNetV2Features.MakeDivisible(inChannels * expandRatio);
        var layers = new List<nn.Module<Tensor, Tensor>>();
        if (expanded != inChannels)
            layers.Add(EfficientNetV2Features.ConvNormActivation(inChannels, expanded, 1));
        layers.Add(EfficientNetV2Features.ConvNormActivation(expanded, expanded, kernel, stride, groups: expanded));
        layers.Add(new SqueezeExcitation(expanded, Math.Max(1, inChannels / 4)));
        layers.Add(EfficientNetV2Features.ConvNormActivation(expanded, outChannels, 1, activation: false));
        block = nn.Sequential(layers.ToArray());
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var result = block.forward(x);
        return (_residual ? result.add_(x) : result).MoveToOuterDisposeScope();
    }
}

/// <summary>torchvision's <c>SqueezeExcitation</c> with SiLU: global average → <c>fc1</c> → SiLU → <c>fc2</c> → sigmoid, scaling the channels.</summary>
internal sealed class SqueezeExcitation : nn.Module<Tensor, Tensor>
{
    private readonly AdaptiveAvgPool2d avgpool;
    private readonly Conv2d fc1;
    private readonly Conv2d fc2;
    private readonly SiLU activation;
    private readonly Sigmoid scale_activation;

    public SqueezeExcitation(long channels, long squeezeChannels) : base(nameof(SqueezeExcitation))
    {
        avgpool = nn.AdaptiveAvgPool2d(1);
        fc1 = nn.Conv2d(channels, squeezeChannels, 1);
        fc2 = nn.Conv2d(squeezeChannels, channels, 1);
        activation = nn.SiLU();
        scale_activation = nn.Sigmoid();
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var scale = scale_activation.forward(fc2.forward(activation.forward(fc1.forward(avgpool.forward(x)))));
        return (scale * x).MoveToOuterDisposeScope();
    }
}
