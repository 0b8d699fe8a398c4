using System.Text.Json.Serialization;
using Wuerstchen.Models.Schedulers;

namespace Wuerstchen.Pipeline.Generation;

/// <summary>
/// The settings a batch of prompts shares: size, schedules, guidance, images per prompt, models and precision.
/// Plain data, serialisable, so it can travel in Durable payloads and be hashed into blob names.
/// </summary>
public sealed record GenerationSettings
{
    public int Width { get; init; } = 1024;
    public int Height { get; init; } = 1024;
    public int ImagesPerPrompt { get; init; } = 1;

    /// <summary>The Stage C schedule; when null, <see cref="PriorSteps"/> evenly spaced steps.</summary>
    public IReadOnlyList<double>? PriorTimesteps { get; init; }
    public int PriorSteps { get; init; } = 60;
    public double PriorGuidanceScale { get; init; } = 4.0;

    public IReadOnlyList<double>? DecoderTimesteps { get; init; }
    public int DecoderSteps { get; init; } = 12;
    public double DecoderGuidanceScale { get; init; }

    /// <summary>Stage C model version (a folder name under the model root or a fine-tuned version id).</summary>
    public string PriorModel { get; init; } = ModelNames.DefaultPrior;

    /// <summary>Stage B/A model version.</summary>
    public string DecoderModel { get; init; } = ModelNames.DefaultDecoder;

    /// <summary>float32, bfloat16 or float16.</summary>
    public string Precision { get; init; } = "float32";

    /// <summary>The recommended recipe (docs/upstream.md, "The recommended recipe"): the 29-step Stage C schedule with guidance 4, 12 Stage B steps.</summary>
    public static GenerationSettings Recommended { get; } = new() { PriorTimesteps = DdpmWuerstchenScheduler.DefaultStageCTimesteps };

    [JsonIgnore]
    public int PriorStepCount => PriorTimesteps is { Count: > 0 } t ? t.Count - 1 : PriorSteps;

    [JsonIgnore]
    public int DecoderStepCount => DecoderTimesteps is { Count: > 0 } t ? t.Count - 1 : DecoderSteps;

    /// <summary>
    /// The work of one prompt in pixel-steps: images × width × height × (Stage C + Stage B steps), the measure the
    /// work budgets (<c>Limits:MaxWorkPerRequest</c>, <c>Bulk:MaxWorkPerJob</c>) are set in.
    /// </summary>
    [JsonIgnore]
    public long WorkPerPrompt => (long)ImagesPerPrompt * Width * Height * (PriorStepCount + DecoderStepCount);

    /// <summary>How <see cref="WorkPerPrompt"/> is made up, for error messages.</summary>
    public string DescribeWork() =>
        $"{ImagesPerPrompt} image(s) × {Width}×{Height} px × ({PriorStepCount} Stage C + {DecoderStepCount} Stage B steps)";
}

/// <summary>One prompt of a batch with its own negative prompt and seeds, so its images do not depend on the batch.</summary>
public sealed record GenerationItem
{
    public required string Prompt { get; init; }
    public string? NegativePrompt { get; init; }
    public required ulong Seed { get; init; }

    /// <summary>Stage B's seed; null for <c>Seed + 1</c>.</summary>
    public ulong? DecoderSeed { get; init; }

    [JsonIgnore]
    public ulong EffectiveDecoderSeed => DecoderSeed ?? unchecked(Seed + 1);
}

public static class ModelNames
{
    public const string DefaultPrior = "warp-ai/wuerstchen-prior";
    public const string DefaultDecoder = "warp-ai/wuerstchen";
}
