using System.Text.Json;
using System.Text.Json.Serialization;

namespace Wuerstchen.Models.Pipelines;

/// <summary>
/// Everything needed to make an image again: prompt, seed, size, schedules, guidance and the model versions.
/// Embedded in every PNG and stored with every latent blob.
/// </summary>
public sealed record GenerationRecipe
{
    public required string Prompt { get; init; }
    public string? NegativePrompt { get; init; }
    public required ulong Seed { get; init; }

    /// <summary>The Stage B seed; null means the one that goes with <see cref="Seed"/> (Seed + 1).</summary>
    public ulong? DecoderSeed { get; init; }
    public required int Width { get; init; }
    public required int Height { get; init; }
    public int ImagesPerPrompt { get; init; } = 1;

    /// <summary>Index of this image among the prompt's images (0-based).</summary>
    public int ImageIndex { get; init; }

    public IReadOnlyList<double>? PriorTimesteps { get; init; }
    public int PriorSteps { get; init; }
    public double PriorGuidanceScale { get; init; }
    public IReadOnlyList<double>? DecoderTimesteps { get; init; }
    public int DecoderSteps { get; init; }
    public double DecoderGuidanceScale { get; init; }

    /// <summary>The Stage C model version (e.g. <c>warp-ai/wuerstchen-prior</c> or a fine-tuned version id).</summary>
    public string? PriorModel { get; init; }

    /// <summary>The Stage B/A model version.</summary>
    public string? DecoderModel { get; init; }

    /// <summary>float32, bfloat16 or float16.</summary>
    public string? Precision { get; init; }

    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        WriteIndented = false,
    };

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    public static GenerationRecipe FromJson(string json) =>
        JsonSerializer.Deserialize<GenerationRecipe>(json, JsonOptions) ?? throw new JsonException("The recipe is JSON null.");

    /// <summary>A one-line summary in the common "parameters" style that image viewers and other tools show.</summary>
    public string ToParametersText()
    {
        string negative = string.IsNullOrEmpty(NegativePrompt) ? "" : $"\nNegative prompt: {NegativePrompt}";
        string prior = PriorTimesteps is { Count: > 0 } list ? $"{list.Count - 1} (custom timesteps)" : PriorSteps.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return FormattableString.Invariant(
            $"{Prompt}{negative}\nPrior steps: {prior}, Prior CFG scale: {PriorGuidanceScale}, Decoder steps: {DecoderSteps}, Decoder CFG scale: {DecoderGuidanceScale}, Seed: {Seed}, Size: {Width}x{Height}, Prior model: {PriorModel}, Decoder model: {DecoderModel}");
    }
}
