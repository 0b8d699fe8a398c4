using TorchSharp;
using TorchSharp.Modules;
using Wuerstchen.Models.Schedulers;
using Wuerstchen.Models.StageC;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Training;

/// <summary>What one optimiser step saw: the loss and the gradient norm before clipping.</summary>
public sealed record TrainingStepResult(double Loss, double GradNormBeforeClip);

/// <summary>
/// One Stage C training step as the diffusers example takes it (upstream: train_text_to_image_prior.py, the training loop): x_t = add_noise(latents, ε, t),
/// ε̂ = prior(x_t, t, text), loss = mean((ε̂ − ε)²) (optionally weighted per sample), backward, clip, AdamW.
/// </summary>
/// <remarks>
/// With a compute type other than float32 (bfloat16: the blog's autocast, which TorchSharp lacks) the forward and
/// backward passes run on a working copy in that type while the weights, their gradients and AdamW's moments stay
/// float32: the copy is refreshed from the weights before the first forward pass after each step, and each
/// backward pass's gradients are added to the float32 gradients. Construct it outside any dispose scope: AdamW's
/// moments are created here and live as long as the step.
/// </remarks>
public sealed class PriorTrainingStep : IDisposable
{
    private const string ExpAvgPrefix = "exp_avg.";
    private const string ExpAvgSqPrefix = "exp_avg_sq.";
    private const string StepPrefix = "step.";

    private readonly WuerstchenPrior _prior;
    private readonly DdpmWuerstchenScheduler _scheduler;
    private readonly OptimizerSettings _settings;
    private readonly string[] _names;
    private readonly Parameter[] _parameters;
    private readonly WuerstchenPrior? _working;
    private readonly Parameter[] _workingParameters = [];
    private bool _workingStale = true;

    public PriorTrainingStep(WuerstchenPrior prior, DdpmWuerstchenScheduler scheduler, OptimizerSettings settings, ScalarType computeType = ScalarType.Float32)
    {
        settings.Validate();
        if (computeType is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16))
            throw new ArgumentOutOfRangeException(nameof(computeType), computeType, "Training computes in float32, bfloat16 or float16.");
        _prior = prior;
        _scheduler = scheduler;
        _settings = settings;
        var named = prior.named_parameters().ToArray();
        _names = named.Select(p => p.name).ToArray();
        _parameters = named.Select(p => p.parameter).ToArray();
        if (_parameters.Any(p => p.dtype != ScalarType.Float32))
            throw new ArgumentException("The trained prior's weights must be float32 (the master weights of mixed precision).", nameof(prior));
        ComputeType = computeType;
        if (computeType != ScalarType.Float32)
        {
            _working = new WuerstchenPrior(prior.Config, _parameters[0].device, computeType);
            _workingParameters = _working.parameters().ToArray();
        }
        Optimizer = optim.AdamW(_parameters, settings.LearningRate, settings.Beta1, settings.Beta2, settings.Epsilon, settings.WeightDecay);
    }

    public AdamW Optimizer { get; }

    /// <summary>The type the forward and backward passes run in.</summary>
    public ScalarType ComputeType { get; }

    /// <summary>The learning rate of the next <see cref="ApplyGradients"/> (a schedule sets it before each step).</summary>
    public double LearningRate
    {
        get => Optimizer.ParamGroups.First().LearningRate;
        set
        {
            if (!(value >= 0) || !double.IsFinite(value))
                throw new ArgumentOutOfRangeException(nameof(value), value, "The learning rate must be a finite number ≥ 0.");
            foreach (var group in Optimizer.ParamGroups)
                group.LearningRate = value;
        }
    }

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
        var model = PrepareModel();
        double loss;
        using (var grad = enable_grad())
        {
            var noisy = _scheduler.AddNoise(latents, noise, t);
            var prediction = model.forward(noisy.to(ComputeType), t.to(ComputeType), text.to(ComputeType));
            var perSample = (prediction.to(float32) - noise.to(float32)).pow(2).mean([1, 2, 3]);
            var weighted = lossWeight is null ? perSample.mean() : (perSample * lossWeight.to(float32)).mean();
            (weighted * lossScale).backward();
            loss = weighted.item<float>();
        }
        if (_working is not null)
            MoveWorkingGradients();
        return loss;
    }

    /// <summary>Clips the accumulated gradients, takes the AdamW step and clears the gradients; returns the norm before clipping.</summary>
    public double ApplyGradients()
    {
        double norm = _settings.MaxGradNorm is > 0 and var max
            ? nn.utils.clip_grad_norm_(_parameters, max)
            : GradNorm();
        Optimizer.step();
        Optimizer.zero_grad();
        _workingStale = true;
        return norm;
    }

    /// <summary>A whole step on one batch.</summary>
    public TrainingStepResult Step(Tensor latents, Tensor text, Tensor noise, Tensor t, Tensor? lossWeight = null)
    {
        double loss = AccumulateGradients(latents, text, noise, t, lossWeight);
        return new TrainingStepResult(loss, ApplyGradients());
    }

    /// <summary>
    /// AdamW's state as named tensors (fresh CPU copies the caller owns): <c>exp_avg.{parameter}</c>,
    /// <c>exp_avg_sq.{parameter}</c> and <c>step.{parameter}</c> (int64, shape [1]) for every parameter.
    /// </summary>
    public Dictionary<string, Tensor> SaveOptimizerState()
    {
        var states = Optimizer.state_dict().State;
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using var noGrad = no_grad();
        for (int i = 0; i < _names.Length; i++)
        {
            var state = (AdamW.State)states[i];
            result[ExpAvgPrefix + _names[i]] = state.exp_avg.detach().cpu().clone().DetachFromDisposeScope();
            result[ExpAvgSqPrefix + _names[i]] = state.exp_avg_sq.detach().cpu().clone().DetachFromDisposeScope();
            result[StepPrefix + _names[i]] = tensor(new[] { state.step }).DetachFromDisposeScope();
        }
        return result;
    }

    /// <summary>Restores what <see cref="SaveOptimizerState"/> saved, exactly; every missing, extra or misshapen entry is named.</summary>
    public void LoadOptimizerState(IReadOnlyDictionary<string, Tensor> saved)
    {
        var problems = new List<string>();
        var expected = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < _names.Length; i++)
        {
            foreach (string key in new[] { ExpAvgPrefix + _names[i], ExpAvgSqPrefix + _names[i] })
            {
                expected.Add(key);
                if (!saved.TryGetValue(key, out var value))
                    problems.Add($"missing '{key}'");
                else if (!value.shape.SequenceEqual(_parameters[i].shape))
                    problems.Add($"'{key}' has shape [{string.Join(", ", value.shape)}], the parameter [{string.Join(", ", _parameters[i].shape)}]");
            }
            string stepKey = StepPrefix + _names[i];
            expected.Add(stepKey);
            if (!saved.TryGetValue(stepKey, out var step))
                problems.Add($"missing '{stepKey}'");
            else if (step.numel() != 1 || step.dtype != ScalarType.Int64)
                problems.Add($"'{stepKey}' is not one int64");
        }
        problems.AddRange(saved.Keys.Where(k => !expected.Contains(k)).Order(StringComparer.Ordinal).Select(k => $"unexpected '{k}'"));
        if (problems.Count > 0)
            throw new InvalidDataException($"The optimizer state does not fit this prior: {string.Join("; ", problems)}.");

        var states = Optimizer.state_dict().State;
        using var noGrad = no_grad();
        for (int i = 0; i < _names.Length; i++)
        {
            var state = (AdamW.State)states[i];
            state.exp_avg.copy_(saved[ExpAvgPrefix + _names[i]]);
            state.exp_avg_sq.copy_(saved[ExpAvgSqPrefix + _names[i]]);
            state.step = saved[StepPrefix + _names[i]].item<long>();
        }
    }

    private WuerstchenPrior PrepareModel()
    {
        if (_working is null)
            return _prior;
        if (_prior.training)
            _working.train();
        else
            _working.eval();
        if (_workingStale)
        {
            using var noGrad = no_grad();
            for (int i = 0; i < _parameters.Length; i++)
                _workingParameters[i].copy_(_parameters[i]);
            _workingStale = false;
        }
        return _working;
    }

    private void MoveWorkingGradients()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        for (int i = 0; i < _parameters.Length; i++)
        {
            var workingGrad = _workingParameters[i].grad;
            if (workingGrad is null)
                continue;
            var grad = _parameters[i].grad;
            if (grad is null)
                _parameters[i].grad = workingGrad.to(float32);
            else
                grad.add_(workingGrad);
            workingGrad.zero_();
        }
    }

    private double GradNorm()
    {
        using var scope = NewDisposeScope();
        var norms = _parameters.Where(p => p.grad is not null).Select(p => p.grad!.norm()).ToArray();
        return norms.Length == 0 ? 0 : stack(norms).norm().item<float>();
    }

    public void Dispose()
    {
        Optimizer.Dispose();
        _working?.Dispose();
    }
}
