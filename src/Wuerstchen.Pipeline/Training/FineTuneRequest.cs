using System.Text.Json.Serialization;

namespace Wuerstchen.Pipeline.Training;

/// <summary>
/// A request to fine-tune Stage C, as clients send it (HTTP body) and as the timer's settings hold it. Everything but
/// the dataset is optional: the recipe (<c>blog</c> by default, or <c>diffusers</c>) supplies the rest, and any field
/// given overrides it. <see cref="FineTuneRequestValidator"/> turns it into a <see cref="FineTuneRun"/> or names each bad field.
/// </summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record FineTuneRequest
{
    public DatasetLocation? Dataset { get; init; }

    /// <summary><c>blog</c> (the seed blog's recipe, docs/upstream.md) or <c>diffusers</c> (the diffusers training example, upstream train_text_to_image_prior.py).</summary>
    public string? Recipe { get; init; }

    /// <summary>Names the run; a run that already has checkpoints resumes from its last good one. New id when absent.</summary>
    public string? RunId { get; init; }

    /// <summary>The starting Stage C weights: a prior model name (a published folder or an earlier <c>finetuned/…</c> version).</summary>
    public string? BasePrior { get; init; }

    public int? TotalSteps { get; init; }
    public int? StepsPerChunk { get; init; }
    public double? LearningRate { get; init; }
    public int? WarmupSteps { get; init; }
    public double? WeightDecay { get; init; }
    public int? BatchSize { get; init; }
    public int? GradientAccumulation { get; init; }
    public double? MaxGradNorm { get; init; }

    /// <summary><c>float32</c> or <c>bfloat16</c> (forward and backward in bf16 over float32 master weights).</summary>
    public string? Precision { get; init; }

    public long? Seed { get; init; }

    /// <summary>The EfficientNet input size (short side, center crop); 768 gives the 24×24 latents of 1024-pixel images.</summary>
    public int? Resolution { get; init; }

    public double? CaptionDropout { get; init; }
    public double? EmaDecay { get; init; }
    public int? EmaUpdateEvery { get; init; }

    /// <summary><c>uniform</c> (t ~ U[0, 1)) or <c>shifted</c> (t = (1 − U)·1.08 + 0.001, clamped to [0.001, 1]).</summary>
    public string? NoiseLevels { get; init; }

    /// <summary><c>none</c> or <c>p2</c> (each sample's loss × (1 − ᾱ(t))).</summary>
    public string? LossWeighting { get; init; }

    /// <summary>Whether the prior's dropout is on while training (it is in both references).</summary>
    public bool? Dropout { get; init; }

    public IReadOnlyList<string>? ValidationPrompts { get; init; }
    public IReadOnlyList<long>? ValidationSeeds { get; init; }

    /// <summary>Width and height of the validation images (a multiple of 128).</summary>
    public int? ValidationSize { get; init; }
    public int? ValidationPriorSteps { get; init; }
    public double? ValidationGuidance { get; init; }
    public int? ValidationDecoderSteps { get; init; }

    /// <summary>The Stage B/A model the validation grid decodes with.</summary>
    public string? DecoderModel { get; init; }
}

/// <summary>Where a dataset lies: a blob prefix in the store, or a folder under <see cref="TrainingOptions.DatasetsRoot"/>.</summary>
public sealed record DatasetLocation
{
    /// <summary>A blob prefix such as <c>datasets/pokemon/</c>.</summary>
    public string? Prefix { get; init; }

    /// <summary>A folder, relative to <see cref="TrainingOptions.DatasetsRoot"/> (or absolute inside it).</summary>
    public string? Folder { get; init; }

    /// <summary>Identifies the dataset in instance ids and blob names: a slug of its last segment and a hash of the location.</summary>
    public string Key()
    {
        string location = Prefix is not null ? "blob:" + Prefix.TrimEnd('/') : "folder:" + (Folder ?? "").TrimEnd('/', '\\');
        string last = location.Split('/', '\\', ':').LastOrDefault(s => s.Length > 0) ?? "dataset";
        string slug = new string(last.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-').ToArray()).Trim('-');
        if (slug.Length > 40)
            slug = slug[..40];
        return $"{(slug.Length == 0 ? "dataset" : slug)}-{TrainingHashes.Of(location)[..10]}";
    }

    public override string ToString() => Prefix is not null ? $"blobs '{Prefix}'" : $"folder '{Folder}'";
}
