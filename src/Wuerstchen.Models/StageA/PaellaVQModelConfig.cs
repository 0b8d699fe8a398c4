using Wuerstchen.Models.Loading;

namespace Wuerstchen.Models.StageA;

/// <summary><c>vqgan/config.json</c>; defaults are diffusers' class defaults, which the published VQGAN uses unchanged.</summary>
public sealed record PaellaVQModelConfig
{
    public int InChannels { get; init; } = 3;
    public int OutChannels { get; init; } = 3;
    public int UpDownScaleFactor { get; init; } = 2;
    public int Levels { get; init; } = 2;
    public int BottleneckBlocks { get; init; } = 12;
    public int EmbedDim { get; init; } = 384;
    public int LatentChannels { get; init; } = 4;
    public int NumVqEmbeddings { get; init; } = 8192;
    public double ScaleFactor { get; init; } = 0.3764;

    /// <summary>The published <c>warp-ai/wuerstchen/vqgan</c> configuration (the Hub's <c>vqgan/config.json</c>, equal to the defaults of upstream modeling_paella_vq_model.py).</summary>
    public static PaellaVQModelConfig Published { get; } = new();

    /// <summary>The width of each level, finest first: <c>embed_dim // 2^i</c> for i = levels−1 … 0 (published: 192, 384).</summary>
    public IReadOnlyList<int> ChannelLevels => Enumerable.Range(0, Levels).Reverse().Select(i => EmbedDim >> i).ToArray();

    public static PaellaVQModelConfig Read(string path)
    {
        var config = ConfigReader.Read<PaellaVQModelConfig>(path);
        config.Validate(path);
        return config;
    }

    public void Validate(string source)
    {
        ConfigReader.Require(InChannels > 0, source, "in_channels", "must be positive");
        ConfigReader.Require(OutChannels > 0, source, "out_channels", "must be positive");
        ConfigReader.Require(UpDownScaleFactor > 0, source, "up_down_scale_factor", "must be positive");
        ConfigReader.Require(Levels is > 0 and < 31, source, "levels", "must lie in [1, 30]");
        ConfigReader.Require(BottleneckBlocks >= 0, source, "bottleneck_blocks", "must not be negative");
        ConfigReader.Require(EmbedDim >> (Levels - 1) > 0, source, "embed_dim", $"must be at least 2^(levels − 1) = {1 << (Levels - 1)} so that every level has a channel");
        ConfigReader.Require(LatentChannels > 0, source, "latent_channels", "must be positive");
        ConfigReader.Require(NumVqEmbeddings > 0, source, "num_vq_embeddings", "must be positive");
        ConfigReader.Require(ScaleFactor > 0 && double.IsFinite(ScaleFactor), source, "scale_factor", "must be positive and finite");
    }
}
