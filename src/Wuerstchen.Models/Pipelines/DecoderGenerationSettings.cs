namespace Wuerstchen.Models.Pipelines;

/// <summary>What the Stage B decoder pipeline samples; defaults follow diffusers (12 steps, no guidance).</summary>
public sealed record DecoderGenerationSettings
{
    /// <summary>One prompt, or one per group of image embeddings (each image keeps its own prompt's text rows).</summary>
    public required IReadOnlyList<string> Prompts { get; init; }

    /// <summary>Null for the empty prompt; one for all prompts, or one per prompt. Used only with guidance.</summary>
    public IReadOnlyList<string>? NegativePrompts { get; init; }

    /// <summary>
    /// How many image embeddings belong to each prompt when they differ (a batch of several requests); unset, the
    /// embeddings are shared evenly among the prompts.
    /// </summary>
    public IReadOnlyList<int>? EmbeddingsOfPrompt { get; init; }

    /// <summary>Stage B samples per image embedding.</summary>
    public int ImagesPerEmbedding { get; init; } = 1;

    public double GuidanceScale { get; init; }

    public int Steps { get; init; } = 12;

    public IReadOnlyList<double>? Timesteps { get; init; }

    public void Validate(long embeddingCount)
    {
        if (Prompts is null || Prompts.Count == 0 || Prompts.Any(p => p is null))
            throw new ArgumentException("At least one prompt, and no null prompt, is needed.", nameof(Prompts));
        if (EmbeddingsOfPrompt is not null)
        {
            if (EmbeddingsOfPrompt.Count != Prompts.Count || EmbeddingsOfPrompt.Any(n => n < 1) || EmbeddingsOfPrompt.Sum() != embeddingCount)
                throw new ArgumentException($"{embeddingCount} image embeddings do not match the per-prompt counts given for {Prompts.Count} prompts.", nameof(EmbeddingsOfPrompt));
        }
        else if (embeddingCount % Prompts.Count != 0)
            throw new ArgumentException($"{embeddingCount} image embeddings cannot be shared evenly among {Prompts.Count} prompts.", nameof(Prompts));
        if (NegativePrompts is not null && (NegativePrompts.Count is not 1 && NegativePrompts.Count != Prompts.Count || NegativePrompts.Any(p => p is null)))
            throw new ArgumentException($"Give one negative prompt or one per prompt ({Prompts.Count}).", nameof(NegativePrompts));
        if (ImagesPerEmbedding < 1)
            throw new ArgumentOutOfRangeException(nameof(ImagesPerEmbedding), ImagesPerEmbedding, "At least one image per embedding.");
        if (!double.IsFinite(GuidanceScale) || GuidanceScale < 0)
            throw new ArgumentOutOfRangeException(nameof(GuidanceScale), GuidanceScale, "Guidance must be a finite number ≥ 0.");
        if (Timesteps is null && Steps < 1)
            throw new ArgumentOutOfRangeException(nameof(Steps), Steps, "At least one step.");
    }
}
