using Wuerstchen.Models.Loading;

namespace Wuerstchen.Models.Text;

/// <summary>The fields of a transformers <c>CLIPTextModel</c> <c>config.json</c> that shape the network.</summary>
public sealed record ClipTextConfig
{
    public int VocabSize { get; init; } = 49408;
    public int HiddenSize { get; init; } = 512;
    public int IntermediateSize { get; init; } = 2048;
    public int NumHiddenLayers { get; init; } = 12;
    public int NumAttentionHeads { get; init; } = 8;
    public int MaxPositionEmbeddings { get; init; } = 77;
    public double LayerNormEps { get; init; } = 1e-5;
    public string HiddenAct { get; init; } = "quick_gelu";

    public int HeadDim => HiddenSize / NumAttentionHeads;

    public static ClipTextConfig Read(string path)
    {
        var config = ConfigReader.Read<ClipTextConfig>(path);
        config.Validate(path);
        return config;
    }

    public void Validate(string source)
    {
        ConfigReader.Require(VocabSize > 0, source, "vocab_size", "must be positive");
        ConfigReader.Require(HiddenSize > 0, source, "hidden_size", "must be positive");
        ConfigReader.Require(IntermediateSize > 0, source, "intermediate_size", "must be positive");
        ConfigReader.Require(NumHiddenLayers > 0, source, "num_hidden_layers", "must be positive");
        ConfigReader.Require(NumAttentionHeads > 0 && HiddenSize % NumAttentionHeads == 0, source, "num_attention_heads",
            $"must be positive and divide hidden_size {HiddenSize}");
        ConfigReader.Require(MaxPositionEmbeddings > 0, source, "max_position_embeddings", "must be positive");
        ConfigReader.Require(LayerNormEps > 0, source, "layer_norm_eps", "must be positive");
        ConfigReader.Require(HiddenAct is "gelu" or "quick_gelu", source, "hidden_act", $"is '{HiddenAct}'; supported: gelu, quick_gelu");
    }
}
