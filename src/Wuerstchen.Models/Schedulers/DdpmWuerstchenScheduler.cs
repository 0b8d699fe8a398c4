using TorchSharp;
using Wuerstchen.Models.Loading;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Schedulers;

/// <summary>
/// diffusers' <c>DDPMWuerstchenScheduler</c>: continuous-time cosine DDPM on t ∈ [0, 1] (upstream: scheduling_ddpm_wuerstchen.py).
/// The arithmetic runs in float32 tensors, as the reference's does, so results agree to the last bits.
/// </summary>
public sealed class DdpmWuerstchenScheduler
{
    private Tensor? _timesteps;

    public DdpmWuerstchenScheduler(DdpmWuerstchenSchedulerConfig config)
    {
        Config = config;
    }

    public DdpmWuerstchenSchedulerConfig Config { get; }

    /// <summary>The recommended Stage C list: 20 values from 1 to 2/3, then 10 more down to 0 (29 model evaluations).</summary>
    public static IReadOnlyList<double> DefaultStageCTimesteps { get; } =
        NumpyLinspace(1.0, 2.0 / 3.0, 20).Concat(NumpyLinspace(2.0 / 3.0, 0.0, 11).Skip(1)).ToArray();

    /// <summary>The current schedule, float32 on the CPU, ending with the final 0 that only serves as the last step's "previous".</summary>
    public Tensor Timesteps => _timesteps ?? throw new InvalidOperationException("Call SetTimesteps before sampling.");

    /// <summary>The model evaluations of the current schedule: every timestep but the last.</summary>
    public int StepCount => (int)Timesteps.shape[0] - 1;

    public static DdpmWuerstchenScheduler FromComponent(ModelComponent component) =>
        new(DdpmWuerstchenSchedulerConfig.Read(Path.Combine(component.Directory, DdpmWuerstchenSchedulerConfig.FileName)));

    /// <summary>The explicit <paramref name="timesteps"/> when given, else <paramref name="steps"/> evenly spaced ones (as both pipelines take them).</summary>
    public void SetTimesteps(IReadOnlyList<double>? timesteps, int steps)
    {
        if (timesteps is not null)
            SetTimesteps(timesteps);
        else
            SetTimesteps(steps);
    }

    /// <summary><c>linspace(1, 0, steps + 1)</c>.</summary>
    public void SetTimesteps(int steps)
    {
        if (steps < 1)
            throw new ArgumentOutOfRangeException(nameof(steps), steps, "At least one inference step is needed.");
        Replace(linspace(1.0, 0.0, steps + 1, dtype: float32));
    }

    /// <summary>An explicit schedule such as <see cref="DefaultStageCTimesteps"/>: at least two values in [0, 1], strictly decreasing.</summary>
    public void SetTimesteps(IReadOnlyList<double> timesteps)
    {
        ArgumentNullException.ThrowIfNull(timesteps);
        if (timesteps.Count < 2)
            throw new ArgumentException($"A schedule needs at least two timesteps (one step and its end); got {timesteps.Count}.", nameof(timesteps));
        for (int i = 0; i < timesteps.Count; i++)
        {
            if (!(timesteps[i] >= 0 && timesteps[i] <= 1))
                throw new ArgumentException($"Timestep {i} is {timesteps[i]}; every timestep must lie in [0, 1].", nameof(timesteps));
            if (i > 0 && !(timesteps[i] < timesteps[i - 1]))
                throw new ArgumentException($"Timesteps must strictly decrease; {timesteps[i]} at position {i} follows {timesteps[i - 1]}.", nameof(timesteps));
        }
        Replace(tensor(timesteps.Select(t => (float)t).ToArray()));
    }

    /// <summary>ᾱ(t), clamped to [1e-4, 0.9999]; <paramref name="t"/> may be any shape.</summary>
    public Tensor AlphaCumprod(Tensor t)
    {
        using var scope = NewDisposeScope();
        var time = t.to(float32);
        if (Config.Scaler > 1)
            time = 1 - (1 - time).pow(Config.Scaler);
        else if (Config.Scaler < 1)
            time = time.pow(Config.Scaler);
        var s = tensor(new[] { (float)Config.S }, device: t.device);
        var initial = (s / (1 + s) * Math.PI * 0.5).cos().pow(2);
        var alphaCumprod = ((time + s) / (1 + s) * Math.PI * 0.5).cos().pow(2) / initial;
        return alphaCumprod.clamp(0.0001, 0.9999).MoveToOuterDisposeScope();
    }

    /// <summary>The schedule entry after the one nearest to <c>t[0]</c>, broadcast to the batch.</summary>
    public Tensor PreviousTimestep(Tensor t)
    {
        using var scope = NewDisposeScope();
        var timesteps = Timesteps.to(t.device);
        long index = (timesteps - t[0].to(float32)).abs().argmin().item<long>();
        if (index + 1 >= timesteps.shape[0])
            throw new InvalidOperationException($"Timestep {t[0].item<float>()} is the end of the schedule; there is no step after it.");
        return timesteps[index + 1].expand(t.shape[0]).MoveToOuterDisposeScope();
    }

    /// <summary>One reverse step, drawing its noise from <paramref name="generator"/> in the model output's dtype and shape.</summary>
    public Tensor Step(Tensor modelOutput, Tensor t, Tensor sample, Generator? generator)
    {
        using var noise = randn(modelOutput.shape, dtype: modelOutput.dtype, generator: generator).to(modelOutput.device);
        return Step(modelOutput, t, sample, noise);
    }

    /// <summary>One reverse step with the given noise z: x' = μ + σ·z·[prev ≠ 0].</summary>
    public Tensor Step(Tensor modelOutput, Tensor t, Tensor sample, Tensor noise)
    {
        using var scope = NewDisposeScope();
        long[] broadcast = PerSampleShape(sample, t.shape[0]);
        var previous = PreviousTimestep(t);
        var alphaCumprod = AlphaCumprod(t).view(broadcast);
        var alphaCumprodPrevious = AlphaCumprod(previous).view(broadcast);
        var alpha = alphaCumprod / alphaCumprodPrevious;

        var mu = (1.0 / alpha).sqrt() * (sample - (1 - alpha) * modelOutput / (1 - alphaCumprod).sqrt());
        var sigma = ((1 - alpha) * (1.0 - alphaCumprodPrevious) / (1.0 - alphaCumprod)).sqrt() * noise;
        var next = mu + sigma * previous.ne(0).to(float32).view(broadcast);
        return next.to(modelOutput.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The current schedule prepared for one sampling run on <paramref name="device"/>: each step's ratio and the
    /// coefficients of <see cref="Step(Tensor, Tensor, Tensor, Tensor)"/>, computed once with the same float32 operations,
    /// so that a step is a handful of kernels with no copy from the host and no read back.
    /// </summary>
    /// <param name="batch">Latents per step (the ratio is broadcast to it, and to twice it for guidance).</param>
    /// <param name="sampleDims">The latents' number of dimensions (4 for (B, C, H, W)).</param>
    public SamplingSchedule Prepare(long batch, int sampleDims, Device device)
    {
        using var scope = NewDisposeScope();
        var timesteps = Timesteps.to(device);
        int steps = StepCount;
        long[] perStep = [steps, .. Enumerable.Repeat(1L, sampleDims)];
        var alphaCumprodAll = AlphaCumprod(timesteps);
        var alphaCumprod = alphaCumprodAll[..steps].view(perStep);
        var alphaCumprodPrevious = alphaCumprodAll[1..].view(perStep);
        var alpha = alphaCumprod / alphaCumprodPrevious;

        var sampleScale = (1.0 / alpha).sqrt();
        var outputScale = 1 - alpha;
        var outputDivisor = (1 - alphaCumprod).sqrt();
        // σ·z·[prev ≠ 0]: the mask is 0 or 1, so folding it into σ first gives the same products.
        var noiseScale = ((1 - alpha) * (1.0 - alphaCumprodPrevious) / (1.0 - alphaCumprod)).sqrt()
                         * timesteps[1..].ne(0).to(float32).view(perStep);
        var ratios = timesteps[..steps];

        var schedule = new SamplingSchedule(steps);
        for (int i = 0; i < steps; i++)
        {
            schedule.Ratio[i] = ratios[i].expand(batch).DetachFromDisposeScope();
            schedule.GuidedRatio[i] = ratios[i].expand(2 * batch).DetachFromDisposeScope();
            schedule.SampleScale[i] = sampleScale[i].DetachFromDisposeScope();
            schedule.OutputScale[i] = outputScale[i].DetachFromDisposeScope();
            schedule.OutputDivisor[i] = outputDivisor[i].DetachFromDisposeScope();
            schedule.NoiseScale[i] = noiseScale[i].DetachFromDisposeScope();
        }
        return schedule;
    }

    /// <summary>Forward diffusion: √ᾱ(t)·x₀ + √(1 − ᾱ(t))·ε, with one t per sample.</summary>
    public Tensor AddNoise(Tensor original, Tensor noise, Tensor t)
    {
        using var scope = NewDisposeScope();
        var alphaCumprod = AlphaCumprod(t).view(PerSampleShape(original, t.shape[0]));
        var noisy = alphaCumprod.sqrt() * original + (1 - alphaCumprod).sqrt() * noise;
        return noisy.to(original.dtype).MoveToOuterDisposeScope();
    }

    private void Replace(Tensor timesteps)
    {
        _timesteps?.Dispose();
        _timesteps = timesteps.DetachFromDisposeScope();
    }

    private static long[] PerSampleShape(Tensor sample, long batch) =>
        [batch, .. Enumerable.Repeat(1L, (int)sample.dim() - 1)];

    /// <summary>numpy.linspace in float64, as the reference builds its default list before casting it to float32.</summary>
    private static IEnumerable<double> NumpyLinspace(double start, double stop, int count)
    {
        double step = (stop - start) / (count - 1);
        for (int i = 0; i < count - 1; i++)
            yield return i * step + start;
        yield return stop;
    }
}

/// <summary>
/// One sampling run's schedule on the device (<see cref="DdpmWuerstchenScheduler.Prepare"/>): per step the ratio, broadcast to
/// the batch and to the guided batch, and the step's coefficients as tensors shaped to broadcast over the latents.
/// </summary>
public sealed class SamplingSchedule : IDisposable
{
    internal SamplingSchedule(int steps)
    {
        Ratio = new Tensor[steps];
        GuidedRatio = new Tensor[steps];
        SampleScale = new Tensor[steps];
        OutputScale = new Tensor[steps];
        OutputDivisor = new Tensor[steps];
        NoiseScale = new Tensor[steps];
    }

    public int StepCount => Ratio.Length;

    /// <summary>Step i's ratio t, float32, (B,).</summary>
    public Tensor[] Ratio { get; }

    /// <summary>Step i's ratio for the [conditional, unconditional] batch, (2B,).</summary>
    public Tensor[] GuidedRatio { get; }

    internal Tensor[] SampleScale { get; }
    internal Tensor[] OutputScale { get; }
    internal Tensor[] OutputDivisor { get; }
    internal Tensor[] NoiseScale { get; }

    /// <summary>
    /// Step i: x' = √(1/α)·(x − (1 − α)·ε̂ / √(1 − ᾱ)) + σ·z·[prev ≠ 0], the operations of
    /// <see cref="DdpmWuerstchenScheduler.Step(Tensor, Tensor, Tensor, Tensor)"/> in their order, in float32, cast back to ε̂'s dtype.
    /// </summary>
    public Tensor Step(int i, Tensor modelOutput, Tensor sample, Tensor noise)
    {
        using var scope = NewDisposeScope();
        var mu = SampleScale[i] * (sample - OutputScale[i] * modelOutput / OutputDivisor[i]);
        var next = mu + NoiseScale[i] * noise;
        return next.to(modelOutput.dtype).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        foreach (var tensors in new[] { Ratio, GuidedRatio, SampleScale, OutputScale, OutputDivisor, NoiseScale })
        {
            foreach (var tensor in tensors)
                tensor?.Dispose();
        }
    }
}
