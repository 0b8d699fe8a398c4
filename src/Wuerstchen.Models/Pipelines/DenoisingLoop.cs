using TorchSharp;
using Wuerstchen.Models.Schedulers;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Pipelines;

/// <summary>
/// The reverse-diffusion loop both pipelines run: for each scheduled t, predict the noise (on the [conditional,
/// unconditional] batch when guided, combined by lerp), draw the step's noise, step. Each step's temporaries live in a
/// dispose scope; only the current latents survive it.
/// </summary>
internal static class DenoisingLoop
{
    /// <param name="predict">The model: (latents batch, ratio batch) → noise prediction; the batch is doubled when guided.</param>
    public static Tensor Run(DdpmWuerstchenScheduler scheduler, Tensor latents, Func<Tensor, Tensor, Tensor> predict, double guidance,
        INoiseSource noise, Device device, string stage, Action<SamplingStep>? onStep, CancellationToken cancellationToken)
    {
        bool guided = ClassifierFreeGuidance.IsOn(guidance);
        var timesteps = scheduler.Timesteps;
        int count = scheduler.StepCount;
        for (int i = 0; i < count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var stepScope = NewDisposeScope();
            // The ratio stays float32 whatever the model dtype: its 10⁴-scaled sinusoids need the precision.
            var ratio = timesteps[i].expand(latents.shape[0]).to(device);
            var prediction = guided
                ? ClassifierFreeGuidance.Combine(predict(cat([latents, latents]), cat([ratio, ratio])), guidance)
                : predict(latents, ratio);
            var stepNoise = noise.Randn(prediction.shape, prediction.dtype, device);
            var next = scheduler.Step(prediction, ratio, latents, stepNoise);
            onStep?.Invoke(new SamplingStep(stage, i + 1, count, next));
            var previous = latents;
            latents = next.MoveToOuterDisposeScope();
            previous.Dispose();
        }
        return latents;
    }
}
