namespace Wuerstchen.Models.Pipelines;

/// <summary>What the Stage C prior pipeline samples; defaults follow the combined pipeline (guidance 4, 60 steps, 1024²).</summary>
public sealed record PriorGenerationSettings
{
    public required IReadOnlyList<string> Prompts { get; init; }

    /// <summary>Null for the empty prompt; one negative prompt for all prompts, or one per prompt.</summary>
    public IReadOnlyList<string>? NegativePrompts { get; init; }

    public int Height { get; init; } = 1024;

    public int Width { get; init; } = 1024;

    public int ImagesPerPrompt { get; init; } = 1;

    /// <summary>Images of each prompt when they differ (a batch of several requests); overrides <see cref="ImagesPerPrompt"/>.</summary>
    public IReadOnlyList<int>? ImagesOfPrompt { get; init; }

    /// <summary>The image count of each prompt.</summary>
    public IReadOnlyList<int> ImageCounts => ImagesOfPrompt ?? Enumerable.Repeat(ImagesPerPrompt, Prompts.Count).ToArray();

    public double GuidanceScale { get; init; } = 4.0;

    /// <summary>Used when <see cref="Timesteps"/> is null: linspace(1, 0, Steps + 1).</summary>
    public int Steps { get; init; } = 60;

    /// <summary>An explicit schedule (e.g. the recommended Stage C list), ending at 0.</summary>
    public IReadOnlyList<double>? Timesteps { get; init; }

    public void Validate()
    {
        if (Prompts is null || Prompts.Count == 0)
            throw new ArgumentException("At least one prompt is needed.", nameof(Prompts));
        if (Prompts.Any(p => p is null))
            throw new ArgumentException("A prompt is null.", nameof(Prompts));
        if (NegativePrompts is not null && NegativePrompts.Count != 1 && NegativePrompts.Count != Prompts.Count)
            throw new ArgumentException($"Give one negative prompt or one per prompt ({Prompts.Count}); got {NegativePrompts.Count}.", nameof(NegativePrompts));
        if (NegativePrompts is not null && NegativePrompts.Any(p => p is null))
            throw new ArgumentException("A negative prompt is null.", nameof(NegativePrompts));
        if (Height <= 0 || Width <= 0)
            throw new ArgumentOutOfRangeException(nameof(Height), $"Image size {Width}×{Height} must be positive.");
        if (ImagesPerPrompt < 1)
            throw new ArgumentOutOfRangeException(nameof(ImagesPerPrompt), ImagesPerPrompt, "At least one image per prompt.");
        if (ImagesOfPrompt is not null && (ImagesOfPrompt.Count != Prompts.Count || ImagesOfPrompt.Any(n => n < 1)))
            throw new ArgumentException($"Give at least one image for each of the {Prompts.Count} prompts.", nameof(ImagesOfPrompt));
        if (!double.IsFinite(GuidanceScale) || GuidanceScale < 0)
            throw new ArgumentOutOfRangeException(nameof(GuidanceScale), GuidanceScale, "Guidance must be a finite number ≥ 0.");
        if (Timesteps is null && Steps < 1)
            throw new ArgumentOutOfRangeException(nameof(Steps), Steps, "At least one step.");
    }
}
