using Wuerstchen.Pipeline.Models;

namespace Wuerstchen.Pipeline.Generation.Batching;

/// <summary>
/// How a worker batches concurrent stage activities (<see cref="StageBatcher"/>). Bound from <c>Wuerstchen:Batching</c>;
/// unset values follow the device (<see cref="DeviceProfile"/>).
/// </summary>
public sealed class BatchingOptions
{
    public const string Section = "Wuerstchen:Batching";

    /// <summary>
    /// The most images one batched model call holds (requests join in arrival order while they fit; a request larger
    /// than this runs alone). 1 turns batching off. Unset: the device's bulk batch size (16 on 70 GiB cards, 8 from 35
    /// GiB, 4 below and on a CPU).
    /// </summary>
    public int? MaxBatchImages { get; set; }

    /// <summary>
    /// The longest the first request of a batch waits for others to join before the batch starts (requests that
    /// arrive while the model is busy join the next batch without waiting). Unset: 20 ms on a GPU, zero on a CPU.
    /// </summary>
    public TimeSpan? MaxWait { get; set; }

    /// <summary>
    /// Stage activities (Stage C, B, A) a worker runs at once, batched or waiting for a batch. The Functions host's own
    /// limit, <c>extensions.durableTask.maxConcurrentActivityFunctions</c> in host.json (the app setting
    /// <c>AzureFunctionsJobHost__extensions__durableTask__maxConcurrentActivityFunctions</c>), should be at least this.
    /// Unset: twice <see cref="MaxBatchImages"/>, so that the next batch gathers while one runs.
    /// </summary>
    public int? MaxConcurrentStageActivities { get; set; }

    /// <summary>
    /// How long requests that shared a model call wait for each other at the next stage, so that a batch moves from
    /// Stage C to B to A together instead of its first arrival running alone and the rest after it. They arrive within
    /// the engine's dispatch time of each other (tens of milliseconds); the wait ends as soon as all are there, and only
    /// a member that never comes (failed, cancelled, or taken by another worker) makes the others wait it out. 0 turns
    /// it off. Unset: 100 ms.
    /// </summary>
    public TimeSpan? CohortWait { get; set; }

    public static readonly TimeSpan DefaultCohortWait = TimeSpan.FromMilliseconds(100);

    public const int MaxBatchImagesLimit = 256;
    public static readonly TimeSpan MaxWaitLimit = TimeSpan.FromSeconds(10);

    public int EffectiveMaxBatchImages(ModelOptions models) => MaxBatchImages ?? DeviceProfile.For(models).BulkBatchSize;

    public TimeSpan EffectiveMaxWait(ModelOptions models) => MaxWait ?? DeviceProfile.For(models).BatchMaxWait;

    public int EffectiveMaxConcurrentStageActivities(ModelOptions models) =>
        MaxConcurrentStageActivities ?? Math.Max(1, 2 * EffectiveMaxBatchImages(models));

    public TimeSpan EffectiveCohortWait(ModelOptions models) => EffectiveMaxBatchImages(models) == 1 ? TimeSpan.Zero : CohortWait ?? DefaultCohortWait;

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (MaxBatchImages is < 1 or > MaxBatchImagesLimit)
            errors.Add($"{Section}:MaxBatchImages is {MaxBatchImages}; use 1 … {MaxBatchImagesLimit} images per batched model call (1 turns batching off).");
        if (MaxWait is { } wait && (wait < TimeSpan.Zero || wait > MaxWaitLimit))
            errors.Add($"{Section}:MaxWait is {wait}; use 00:00:00 … {MaxWaitLimit} (a few to tens of milliseconds, e.g. 00:00:00.020).");
        if (CohortWait is { } cohort && (cohort < TimeSpan.Zero || cohort > MaxWaitLimit))
            errors.Add($"{Section}:CohortWait is {cohort}; use 00:00:00 … {MaxWaitLimit} (tens to hundreds of milliseconds, e.g. 00:00:00.100; 0 turns it off).");
        if (MaxConcurrentStageActivities is < 1 or > 1024)
            errors.Add($"{Section}:MaxConcurrentStageActivities is {MaxConcurrentStageActivities}; use 1 … 1024 stage activities at once.");
        return errors;
    }
}
