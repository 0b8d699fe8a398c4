namespace Wuerstchen.Models.Pipelines;

/// <summary>
/// A full text-to-image run: Stage C then Stage B and A with one seeded noise stream, as diffusers' combined pipeline
/// runs them. Defaults are the documented recommendation: 1024², the 29-step Stage C schedule with guidance 4,
/// 12 Stage B steps without guidance.
/// </summary>
public sealed record TextToImageSettings
{
    public required IReadOnlyList<string> Prompts { get; init; }
    public IReadOnlyList<string>? NegativePrompts { get; init; }
    public int Width { get; init; } = 1024;
    public int Height { get; init; } = 1024;
    public int ImagesPerPrompt { get; init; } = 1;
    public double PriorGuidanceScale { get; init; } = 4.0;
    public int PriorSteps { get; init; } = 60;

    /// <summary>The Stage C schedule; null to use <see cref="PriorSteps"/> evenly spaced steps.</summary>
    public IReadOnlyList<double>? PriorTimesteps { get; init; } = Schedulers.DdpmWuerstchenScheduler.DefaultStageCTimesteps;

    public double DecoderGuidanceScale { get; init; }
    public int DecoderSteps { get; init; } = 12;
    public IReadOnlyList<double>? DecoderTimesteps { get; init; }

    public PriorGenerationSettings ForPrior() => new()
    {
        Prompts = Prompts,
        NegativePrompts = NegativePrompts,
        Width = Width,
        Height = Height,
        ImagesPerPrompt = ImagesPerPrompt,
        GuidanceScale = PriorGuidanceScale,
        Steps = PriorSteps,
        Timesteps = PriorTimesteps,
    };

    public DecoderGenerationSettings ForDecoder() => new()
    {
        Prompts = Prompts,
        NegativePrompts = NegativePrompts,
        GuidanceScale = DecoderGuidanceScale,
        Steps = DecoderSteps,
        Timesteps = DecoderTimesteps,
    };

    public void Validate()
    {
        ImageSize.Validate(Width, Height);
        ForPrior().Validate();
    }
}
