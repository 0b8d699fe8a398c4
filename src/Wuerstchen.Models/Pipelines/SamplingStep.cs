using static TorchSharp.torch;

namespace Wuerstchen.Models.Pipelines;

/// <summary>
/// Reported after each denoising step: which stage, the step (1-based) of how many, and the latents after it.
/// <see cref="Latents"/> is only valid during the callback; clone it to keep it.
/// </summary>
public sealed record SamplingStep(string Stage, int Step, int StepCount, Tensor Latents);
