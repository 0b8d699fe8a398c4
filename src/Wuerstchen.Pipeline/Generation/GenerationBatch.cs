using System.Security.Cryptography;
using System.Text.Json;
using Wuerstchen.Models.Pipelines;

namespace Wuerstchen.Pipeline.Generation;

/// <summary>
/// Prompts that go through the stages together (one Stage C and one Stage B forward pass per step).
/// Blob names derive from its content, so a retry or replay rewrites the same blobs.
/// </summary>
public sealed record GenerationBatch
{
    public required GenerationSettings Settings { get; init; }
    public required IReadOnlyList<GenerationItem> Items { get; init; }

    private static readonly JsonSerializerOptions CanonicalJson = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, WriteIndented = false };

    /// <summary>Identifies the Stage C output: the prompts, negative prompts and seeds, and the settings Stage C reads.</summary>
    public string StageCKey() => Hash(new
    {
        stage = "c",
        items = Items.Select(i => new { i.Prompt, i.NegativePrompt, i.Seed }),
        Settings.Width,
        Settings.Height,
        Settings.ImagesPerPrompt,
        Settings.PriorTimesteps,
        steps = Settings.PriorTimesteps is null ? Settings.PriorSteps : 0,
        Settings.PriorGuidanceScale,
        Settings.PriorModel,
        Settings.Precision,
    });

    /// <summary>Identifies the Stage B output for a Stage C output: the decoder seeds and the settings Stage B reads.</summary>
    public string StageBKey(string stageCKey) => Hash(new
    {
        stage = "b",
        stageCKey,
        items = Items.Select(i => new { i.Prompt, i.NegativePrompt, seed = i.EffectiveDecoderSeed }),
        Settings.DecoderTimesteps,
        steps = Settings.DecoderTimesteps is null ? Settings.DecoderSteps : 0,
        Settings.DecoderGuidanceScale,
        Settings.DecoderModel,
        Settings.Precision,
    });

    /// <summary>The recipe of image <paramref name="index"/> of item <paramref name="item"/>, as embedded in its PNG.</summary>
    public GenerationRecipe RecipeOf(int item, int index) => new()
    {
        Prompt = Items[item].Prompt,
        NegativePrompt = Items[item].NegativePrompt,
        Seed = Items[item].Seed,
        DecoderSeed = Items[item].EffectiveDecoderSeed,
        Width = Settings.Width,
        Height = Settings.Height,
        ImagesPerPrompt = Settings.ImagesPerPrompt,
        ImageIndex = index,
        PriorTimesteps = Settings.PriorTimesteps,
        PriorSteps = Settings.PriorStepCount,
        PriorGuidanceScale = Settings.PriorGuidanceScale,
        DecoderTimesteps = Settings.DecoderTimesteps,
        DecoderSteps = Settings.DecoderStepCount,
        DecoderGuidanceScale = Settings.DecoderGuidanceScale,
        PriorModel = Settings.PriorModel,
        DecoderModel = Settings.DecoderModel,
        Precision = Settings.Precision,
    };

    private static string Hash(object value)
    {
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(value, CanonicalJson);
        return Convert.ToHexStringLower(SHA256.HashData(json))[..32];
    }

    public string ToJson() => JsonSerializer.Serialize(this, CanonicalJson);

    public static GenerationBatch FromJson(string json) =>
        JsonSerializer.Deserialize<GenerationBatch>(json, CanonicalJson) ?? throw new JsonException("The batch is JSON null.");
}
