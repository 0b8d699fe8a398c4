using TorchSharp;
using Wuerstchen.Models.Schedulers;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Pipelines;

/// <summary>
/// The reverse-diffusion loop both pipelines run: for each scheduled t, predict the noise (on the [conditional,
/// unconditional] batch when guided, combined by lerp), step. The initial latents and every step's noise are drawn up
/// front in the reference's order, and the schedule's ratios and coefficients are on the device before the first step,
/// so a step issues only the model's kernels and a few more: no copy from the host, no read back. Each step's
/// temporaries live in a dispose scope; only the current latents survive it.
/// </summary>
internal static class DenoisingLoop
{
    /// <param name="shape">The latents' shape (B, C, H, W).</param>
    /// <param name="predict">The model: (latents batch, ratio batch) → noise prediction; the batch is doubled when guided.</param>
    public static Tensor Run(DdpmWuerstchenScheduler scheduler, long[] shape, Func<Tensor, Tensor, Tensor> predict, double guidance,
        INoiseSource noise, InferenceOptions options, string stage, Action<SamplingStep>? onStep, CancellationToken cancellationToken)
    {
        bool guided = ClassifierFreeGuidance.IsOn(guidance);
        int count = scheduler.StepCount;
        using var draws = noise.RandnSequence(count + 1, shape, options.DType, options.Device);
        // The ratio stays float32 whatever the model dtype: its 10⁴-scaled sinusoids need the precision.
        using var schedule = scheduler.Prepare(shape[0], shape.Length, options.Device);
        var latents = draws[0];
        for (int i = 0; i < count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var stepScope = NewDisposeScope();
            var prediction = guided
                ? ClassifierFreeGuidance.Combine(predict(cat([latents, latents]), schedule.GuidedRatio[i]), guidance)
                : predict(latents, schedule.Ratio[i]);
            var next = schedule.Step(i, prediction, latents, draws[i + 1]);
            onStep?.Invoke(new SamplingStep(stage, i + 1, count, next));
            var previous = latents;
            latents = next.MoveToOuterDisposeScope();
            previous.Dispose();
        }
        return latents;
    }
}
