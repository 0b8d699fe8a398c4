using Wuerstchen.Models.Loading;

namespace Wuerstchen.Models.Effnet;

/// <summary>The EfficientNet encoder's <c>config.json</c>; defaults are the diffusers training example's (Würstchen v2).</summary>
public sealed record EfficientNetEncoderConfig
{
    public const string EfficientNetV2S = "efficientnet_v2_s";

    public int CLatent { get; init; } = 16;
    public int CCond { get; init; } = 1280;
    public string Effnet { get; init; } = EfficientNetV2S;

    public static EfficientNetEncoderConfig Read(string path)
    {
        var config = ConfigReader.Read<EfficientNetEncoderConfig>(path);
        config.Validate(path);
        return config;
    }

    public void Validate(string source)
    {
        ConfigReader.Require(Effnet == EfficientNetV2S, source, "effnet", $"is '{Effnet}'; supported: {EfficientNetV2S} (the Würstchen v2 backbone)");
        ConfigReader.Require(CCond == EfficientNetV2Features.OutputChannels, source, "c_cond",
            $"must equal the backbone's output width {EfficientNetV2Features.OutputChannels}");
        ConfigReader.Require(CLatent > 0, source, "c_latent", "must be positive");
    }
}
