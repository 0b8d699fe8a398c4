using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Training;

/// <summary>
/// How the EMA weights follow the trained ones. The diffusers example: decay 0.9999 every step with the
/// <c>(1 + s)/(10 + s)</c> ramp (<see cref="Warmup"/>); the seed blog: β 0.9 every 100 steps, no ramp (upstream: training_utils.py, EMAModel; the seed blog: docs/upstream.md).
/// </summary>
public sealed record EmaSettings
{
    public double Decay { get; init; } = 0.9999;

    /// <summary>Update after every this many optimiser steps.</summary>
    public int UpdateEvery { get; init; } = 1;

    /// <summary>diffusers' <c>EMAModel</c> ramp: the n-th update uses min((1 + s)/(10 + s), decay) with s = n − 1 (a plain copy first).</summary>
    public bool Warmup { get; init; } = true;

    public void Validate()
    {
        if (!(Decay is >= 0 and <= 1))
            throw new ArgumentOutOfRangeException(nameof(Decay), Decay, "The EMA decay must lie in [0, 1].");
        if (UpdateEvery < 1)
            throw new ArgumentOutOfRangeException(nameof(UpdateEvery), UpdateEvery, "The EMA updates at least every step (≥ 1).");
    }
}

/// <summary>
/// An exponential moving average of a model's parameters in float32: <c>ema = d·ema + (1 − d)·param</c>. Starts as a
/// copy of the parameters. Its state (the averages and the update count) goes into checkpoints, so a resumed run
/// continues the same average. Create it outside any dispose scope; it owns its tensors until disposed.
/// </summary>
public sealed class ExponentialMovingAverage : IDisposable
{
    private readonly Dictionary<string, Tensor> _averages;
    private readonly (string Name, Parameter Parameter)[] _parameters;

    public ExponentialMovingAverage(IEnumerable<(string Name, Parameter Parameter)> parameters, EmaSettings settings)
    {
        settings.Validate();
        Settings = settings;
        _parameters = parameters.ToArray();
        using var noGrad = no_grad();
        _averages = _parameters.ToDictionary(p => p.Name, p => p.Parameter.detach().to(float32).clone().DetachFromDisposeScope(), StringComparer.Ordinal);
    }

    public EmaSettings Settings { get; }

    /// <summary>Updates applied so far.</summary>
    public long Updates { get; private set; }

    /// <summary>The averages by parameter name (live: writing to them changes the average).</summary>
    public IReadOnlyDictionary<string, Tensor> Averages => _averages;

    /// <summary>The decay the next update uses.</summary>
    public double NextDecay() => !Settings.Warmup ? Settings.Decay
        : Updates == 0 ? 0
        : Math.Min((1.0 + Updates) / (10.0 + Updates), Settings.Decay);

    /// <summary>Call after optimiser step <paramref name="optimizerStep"/> (1-based); updates when it is a multiple of the interval and returns the decay used.</summary>
    public double? AfterStep(long optimizerStep)
    {
        if (optimizerStep % Settings.UpdateEvery != 0)
            return null;
        double decay = NextDecay();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var (name, parameter) in _parameters)
            _averages[name].mul_(decay).add_(parameter.detach().to(float32), alpha: 1 - decay);
        Updates++;
        return decay;
    }

    /// <summary>Restores a saved average (every parameter, same shapes) and its update count.</summary>
    public void Load(IReadOnlyDictionary<string, Tensor> averages, long updates)
    {
        var problems = _averages.Keys.Where(k => !averages.ContainsKey(k)).Select(k => $"missing '{k}'")
            .Concat(averages.Keys.Where(k => !_averages.ContainsKey(k)).Select(k => $"unexpected '{k}'"))
            .Concat(_averages.Where(a => averages.TryGetValue(a.Key, out var v) && !v.shape.SequenceEqual(a.Value.shape))
                .Select(a => $"'{a.Key}' has shape [{string.Join(", ", averages[a.Key].shape)}], expected [{string.Join(", ", a.Value.shape)}]"))
            .ToArray();
        if (problems.Length > 0)
            throw new InvalidDataException($"The EMA weights do not fit this model: {string.Join("; ", problems)}.");
        ArgumentOutOfRangeException.ThrowIfNegative(updates);
        using var noGrad = no_grad();
        foreach (var (name, average) in _averages)
            average.copy_(averages[name]);
        Updates = updates;
    }

    public void Dispose()
    {
        foreach (var average in _averages.Values)
            average.Dispose();
    }
}
