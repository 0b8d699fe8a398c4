using System.Text.Json;
using System.Text.Json.Serialization;
using Wuerstchen.Models.Loading;

namespace Wuerstchen.Models.StageB;

/// <summary>
/// <c>decoder/config.json</c> (upstream: modeling_wuerstchen_diffnext.py, <c>WuerstchenDiffNeXt.__init__</c>); defaults are diffusers' class defaults, which the published decoder uses unchanged.
/// The per-level lists (<c>c_hidden</c>, <c>nhead</c>, <c>blocks</c>, <c>level_config</c>, <c>inject_effnet</c>) have one entry
/// per U-Net level; <c>level_config</c> spells each level's repeated block pattern with C = ResBlockStageB, T = TimestepBlock,
/// A = AttnBlock.
/// </summary>
public sealed record WuerstchenDiffNeXtConfig
{
    public int CIn { get; init; } = 4;
    public int COut { get; init; } = 4;

    // The snake_case policy reads the acronym "CR" as "cr", so without the name c_r would silently keep its default.
    [JsonPropertyName("c_r")]
    public int CR { get; init; } = 64;

    public int PatchSize { get; init; } = 2;
    public int CCond { get; init; } = 1024;
    public IReadOnlyList<int> CHidden { get; init; } = [320, 640, 1280, 1280];
    public IReadOnlyList<int> Nhead { get; init; } = [-1, 10, 20, 20];
    public IReadOnlyList<int> Blocks { get; init; } = [4, 4, 14, 4];
    public IReadOnlyList<string> LevelConfig { get; init; } = ["CT", "CTA", "CTA", "CTA"];
    public IReadOnlyList<bool> InjectEffnet { get; init; } = [false, true, true, true];
    public int EffnetEmbd { get; init; } = 16;
    public int ClipEmbd { get; init; } = 1024;
    public int KernelSize { get; init; } = 3;

    /// <summary>One rate for every level, or one per level (diffusers accepts both; config.json holds a number or a list).</summary>
    [JsonConverter(typeof(NumberOrListConverter))]
    public IReadOnlyList<double> Dropout { get; init; } = [0.1];

    /// <summary>The published <c>warp-ai/wuerstchen</c> decoder configuration (= the class defaults).</summary>
    public static WuerstchenDiffNeXtConfig Published { get; } = new();

    public int Levels => CHidden.Count;

    /// <summary>Stage B latent sides must be multiples of this: the patch size times one halving per level below the top.</summary>
    public int SpatialGranularity => PatchSize << (Levels - 1);

    public double DropoutAt(int level) => Dropout.Count == 1 ? Dropout[0] : Dropout[level];

    public static WuerstchenDiffNeXtConfig Read(string path)
    {
        var config = ConfigReader.Read<WuerstchenDiffNeXtConfig>(path);
        config.Validate(path);
        return config;
    }

    public void Validate(string source)
    {
        ConfigReader.Require(CIn > 0, source, "c_in", "must be positive");
        ConfigReader.Require(COut > 0, source, "c_out", "must be positive");
        ConfigReader.Require(CR >= 4, source, "c_r", "must be at least 4");
        ConfigReader.Require(PatchSize > 0, source, "patch_size", "must be positive");
        ConfigReader.Require(CCond > 0, source, "c_cond", "must be positive");
        ConfigReader.Require(EffnetEmbd > 0, source, "effnet_embd", "must be positive");
        ConfigReader.Require(ClipEmbd > 0, source, "clip_embd", "must be positive");
        ConfigReader.Require(KernelSize > 0 && KernelSize % 2 == 1, source, "kernel_size", "must be a positive odd number");

        // JSON null in a list field deserialises to null despite the annotations; report it like a wrong length.
        IReadOnlyList<int> widths = CHidden ?? [];
        ConfigReader.Require(widths.Count > 0 && widths.All(c => c > 0), source, "c_hidden", "must list at least one level, every width positive");
        int levels = widths.Count;
        RequireOnePerLevel(Nhead, "nhead", levels, source);
        RequireOnePerLevel(Blocks, "blocks", levels, source);
        RequireOnePerLevel(LevelConfig, "level_config", levels, source);
        RequireOnePerLevel(InjectEffnet, "inject_effnet", levels, source);
        IReadOnlyList<double> dropout = Dropout ?? [];
        ConfigReader.Require(dropout.Count == 1 || dropout.Count == levels, source, "dropout",
            $"must be one number or a list of {levels} (one per c_hidden level)");
        ConfigReader.Require(dropout.All(p => p is >= 0 and < 1), source, "dropout", "must lie in [0, 1)");

        for (int level = 0; level < levels; level++)
        {
            ConfigReader.Require(Blocks[level] >= 0, source, $"blocks[{level}]", "must not be negative");
            string pattern = LevelConfig[level] ?? "";
            ConfigReader.Require(pattern.All(kind => kind is 'C' or 'T' or 'A'), source, $"level_config[{level}]",
                $"is '{pattern}'; only the block letters C, T and A are known");
            if (pattern.Contains('A'))
            {
                ConfigReader.Require(Nhead[level] > 0 && widths[level] % Nhead[level] == 0, source, $"nhead[{level}]",
                    $"must be positive and divide c_hidden[{level}] = {widths[level]} (level {level} has attention)");
            }
        }
    }

    private static void RequireOnePerLevel<T>(IReadOnlyList<T>? values, string field, int levels, string source) =>
        ConfigReader.Require(values is not null && values.Count == levels, source, field,
            $"has {values?.Count ?? 0} entries but c_hidden has {levels} levels; every per-level list needs one entry per level");

    private sealed class NumberOrListConverter : JsonConverter<IReadOnlyList<double>>
    {
        public override IReadOnlyList<double> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.TokenType == JsonTokenType.StartArray
                ? JsonSerializer.Deserialize<double[]>(ref reader, options) ?? []
                : [JsonSerializer.Deserialize<double>(ref reader, options)];

        public override void Write(Utf8JsonWriter writer, IReadOnlyList<double> value, JsonSerializerOptions options)
        {
            if (value.Count == 1)
                writer.WriteNumberValue(value[0]);
            else
                JsonSerializer.Serialize(writer, value.ToArray(), options);
        }
    }
}
