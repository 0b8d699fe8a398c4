using TorchSharp;
using TorchSharp.Modules;
using Wuerstchen.Models.Schedulers;
using Wuerstchen.Models.StageC;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Training;

/// <summary>What one optimiser step saw: the loss and the gradient norm before clipping.</summary>
public sealed record TrainingStepResult(double Loss, double GradNormBeforeClip);

/// <summary>
/// One Stage C training step as the diffusers example takes it (spec §9.2): x_t = add_noise(latents, ε, t),
/// ε̂ = prior(x_t, t, text), loss = mean((ε̂ − ε)²) (optionally weighted per sample), backward, clip, AdamW.
/// </summary>
public sealed class PriorTrainingStep : IDisposable
{
    private readonly WuerstchenPrior _prior;
    private readonly DdpmWuerstchenScheduler _scheduler;
    private readonly OptimizerSettings _settings;
    private readonly Parameter[] _parameters;

    public PriorTrainingStep(WuerstchenPrior prior, DdpmWuerstchenScheduler scheduler, OptimizerSettings settings)
    {
        settings.Validate();
        _prior = prior;
        _scheduler = scheduler;
        _settings = settings;
        _parameters = prior.parameters().ToArray();
        Optimizer = optim.AdamW(_parameters, settings.LearningRate, settings.Beta1, settings.Beta2, settings.Epsilon, settings.WeightDecay);
    }

    public AdamW Optimizer { get; }

    /// <summary>The noised latents and the prediction for them, for inspection; no gradient is kept.</summary>
    public (Tensor NoisyLatents, Tensor Prediction) Predict(Tensor latents, Tensor text, Tensor noise, Tensor t)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var noisy = _scheduler.AddNoise(latents, noise, t);
        var prediction = _prior.forward(noisy, t, text);
        return (noisy.MoveToOuterDisposeScope(), prediction.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Computes the loss and its gradients without stepping; call <see cref="ApplyGradients"/> after one or more calls
    /// (gradient accumulation). <paramref name="lossWeight"/>, if given, weights each sample's mean squared error.
    /// </summary>
    public double AccumulateGradients(Tensor latents, Tensor text, Tensor noise, Tensor t, Tensor? lossWeight = null, double lossScale = 1.0)
    {
        using var scope = NewDisposeScope();
        using var grad = enable_grad();
        var noisy = _scheduler.AddNoise(latents, noise, t);
        var prediction = _prior.forward(noisy, t, text);
        var perSample = (prediction.to(float32) - noise.to(float32)).pow(2).mean([1, 2, 3]);
        var loss = lossWeight is null ? perSample.mean() : (perSample * lossWeight.to(float32)).mean();
        (loss * lossScale).backward();
        return loss.item<float>();
    }

    /// <summary>Clips the accumulated gradients, takes the AdamW step and clears the gradients; returns the norm before clipping.</summary>
    public double ApplyGradients()
    {
        double norm = _settings.MaxGradNorm is > 0 and var max
            ? nn.utils.clip_grad_norm_(_parameters, max)
            : GradNorm();
        Optimizer.step();
        Optimizer.zero_grad();
        return norm;
    }

    /// <summary>A whole step on one batch.</summary>
    public TrainingStepResult Step(Tensor latents, Tensor text, Tensor noise, Tensor t, Tensor? lossWeight = null)
    {
        double loss = AccumulateGradients(latents, text, noise, t, lossWeight);
        return new TrainingStepResult(loss, ApplyGradients());
    }

    private double GradNorm()
    {
        using var scope = NewDisposeScope();
        var norms = _parameters.Where(p => p.grad is not null).Select(p => p.grad!.norm()).ToArray();
        return norms.Length == 0 ? 0 : stack(norms).norm().item<float>();
    }

    public void Dispose() => Optimizer.Dispose();
}
