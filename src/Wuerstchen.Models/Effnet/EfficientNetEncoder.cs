using TorchSharp;
using TorchSharp.Modules;
using Wuerstchen.Models.Loading;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Effnet;

/// <summary>
/// The EfficientNet encoder that makes Stage C's training targets (upstream: modeling_efficient_net_encoder.py, EfficientNetEncoder): the
/// EfficientNetV2-S feature extractor and a 1×1 conv + BatchNorm down to <c>c_latent</c> channels. Keys:
/// <c>backbone.*</c> (torchvision's), <c>mapper.0.weight</c>, <c>mapper.1.*</c>. Frozen: always used in eval mode.
/// </summary>
public sealed class EfficientNetEncoder : nn.Module<Tensor, Tensor>
{
    /// <summary>Stage C's latent scaling: the prior learns <c>(effnet + 1) / 42</c> (upstream: train_text_to_image_prior.py, <c>image_embeds.add(1.0).div(42.0)</c>).</summary>
    public const double PriorLatentScale = 42.0;

    private readonly Sequential backbone;
    private readonly Sequential mapper;

    public EfficientNetEncoder(EfficientNetEncoderConfig config) : base(nameof(EfficientNetEncoder))
    {
        Config = config;
        backbone = EfficientNetV2Features.CreateV2S();
        mapper = nn.Sequential(nn.Conv2d(config.CCond, config.CLatent, 1, bias: false), nn.BatchNorm2d(config.CLatent));
        RegisterComponents();
    }

    public EfficientNetEncoderConfig Config { get; }

    /// <summary>
    /// Builds the encoder from its folder (<c>config.json</c> + weights) and loads the weights strictly, converted to
    /// <paramref name="dtype"/> (float32 by default: the checkpoint is float16, which this CPU cannot compute fast).
    /// </summary>
    public static EfficientNetEncoder FromComponent(ModelComponent component, ScalarType? dtype = ScalarType.Float32, string? variant = null)
    {
        var model = new EfficientNetEncoder(EfficientNetEncoderConfig.Read(component.ConfigPath));
        using var weights = component.OpenWeights(variant);
        StateDictLoader.Load(model, weights, new StateDictLoadOptions { DType = dtype });
        model.eval();
        return model;
    }

    /// <summary>The training target of Stage C: <c>(effnet + 1) / 42</c>.</summary>
    public static Tensor ToPriorLatents(Tensor effnetOutput)
    {
        using var scope = NewDisposeScope();
        return ((effnetOutput + 1) / PriorLatentScale).MoveToOuterDisposeScope();
    }

    /// <param name="pixels">(B, 3, H, W) pixels normalised with the ImageNet mean and std.</param>
    /// <returns>(B, c_latent, ⌈H/32⌉, ⌈W/32⌉) features, unscaled (no <c>(x + 1) / 42</c>).</returns>
    public override Tensor forward(Tensor pixels) => Forward(pixels, null);

    /// <summary>The forward pass, reporting each backbone stage (<c>backbone.{i}</c>) and <c>mapper</c> to <paramref name="observe"/>.</summary>
    public Tensor Forward(Tensor pixels, Action<string, Tensor>? observe)
    {
        using var scope = NewDisposeScope();
        var hidden = pixels;
        int index = 0;
        foreach (var stage in backbone.children())
        {
            hidden = ((nn.Module<Tensor, Tensor>)stage).forward(hidden);
            observe?.Invoke($"backbone.{index++}", hidden);
        }
        var output = mapper.forward(hidden);
        observe?.Invoke("mapper", output);
        return output.MoveToOuterDisposeScope();
    }
}
