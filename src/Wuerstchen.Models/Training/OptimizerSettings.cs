namespace Wuerstchen.Models.Training;

/// <summary>AdamW and gradient clipping; defaults are the diffusers example's (lr 1e-4, no weight decay, clip 1.0).</summary>
public sealed record OptimizerSettings
{
    public double LearningRate { get; init; } = 1e-4;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;
    public double Epsilon { get; init; } = 1e-8;
    public double WeightDecay { get; init; }

    /// <summary>Maximum global L2 norm of the gradients; null or non-positive disables clipping.</summary>
    public double? MaxGradNorm { get; init; } = 1.0;

    public void Validate()
    {
        if (!(LearningRate > 0) || !double.IsFinite(LearningRate))
            throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "The learning rate must be a positive number.");
        if (Beta1 is < 0 or >= 1 || Beta2 is < 0 or >= 1)
            throw new ArgumentOutOfRangeException(nameof(Beta1), $"Adam betas must lie in [0, 1); got {Beta1}, {Beta2}.");
        if (!(Epsilon > 0))
            throw new ArgumentOutOfRangeException(nameof(Epsilon), Epsilon, "Epsilon must be positive.");
        if (WeightDecay < 0 || !double.IsFinite(WeightDecay))
            throw new ArgumentOutOfRangeException(nameof(WeightDecay), WeightDecay, "Weight decay must be ≥ 0.");
    }
}
