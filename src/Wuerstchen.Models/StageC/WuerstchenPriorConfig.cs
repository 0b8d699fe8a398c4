using System.Text.Json.Serialization;
using Wuerstchen.Models.Loading;

namespace Wuerstchen.Models.StageC;

/// <summary><c>prior/config.json</c>; defaults are diffusers' class defaults (the published prior sets c 1536, c_cond 1280, depth 32, nhead 24).</summary>
public sealed record WuerstchenPriorConfig
{
    public int CIn { get; init; } = 16;
    public int C { get; init; } = 1280;
    public int CCond { get; init; } = 1024;
    // The snake_case policy reads the acronym "CR" as "cr", so without the name c_r would silently keep its default.
    [JsonPropertyName("c_r")]
    public int CR { get; init; } = 64;
    public int Depth { get; init; } = 16;
    public int Nhead { get; init; } = 16;
    public double Dropout { get; init; } = 0.1;

    /// <summary>The published <c>warp-ai/wuerstchen-prior</c> configuration.</summary>
    public static WuerstchenPriorConfig Published { get; } = new() { C = 1536, CCond = 1280, Depth = 32, Nhead = 24 };

    public static WuerstchenPriorConfig Read(string path)
    {
        var config = ConfigReader.Read<WuerstchenPriorConfig>(path);
        config.Validate(path);
        return config;
    }

    public void Validate(string source)
    {
        ConfigReader.Require(CIn > 0, source, "c_in", "must be positive");
        ConfigReader.Require(C > 0, source, "c", "must be positive");
        ConfigReader.Require(CCond > 0, source, "c_cond", "must be positive");
        ConfigReader.Require(CR >= 4, source, "c_r", "must be at least 4");
        ConfigReader.Require(Depth > 0, source, "depth", "must be positive");
        ConfigReader.Require(Nhead > 0 && C % Nhead == 0, source, "nhead", $"must be positive and divide c = {C}");
        ConfigReader.Require(Dropout is >= 0 and < 1, source, "dropout", "must lie in [0, 1)");
    }
}
