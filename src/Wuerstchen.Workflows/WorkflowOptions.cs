using Microsoft.DurableTask;

namespace Wuerstchen.Workflows;

/// <summary>How orchestrations retry and report. Bound from <c>Wuerstchen:Workflows</c>.</summary>
public sealed class WorkflowOptions
{
    public const string Section = "Wuerstchen:Workflows";

    public RetrySettings Retry { get; set; } = new();

    /// <summary>How often a running stage publishes its step (zero: every step).</summary>
    public TimeSpan ProgressInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How often a running stage looks for its generation's cancel marker when no step ends in between (loading a
    /// model, encoding text, decoding); it also looks after every denoising step.
    /// </summary>
    public TimeSpan CancelCheckInterval { get; set; } = TimeSpan.FromSeconds(1);

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        var retry = Retry;
        if (retry.MaxAttempts is < 1 or > 100)
            errors.Add($"{Section}:Retry:MaxAttempts is {retry.MaxAttempts}; use 1 … 100 (1: no retries).");
        if (retry.FirstInterval <= TimeSpan.Zero || retry.FirstInterval > TimeSpan.FromDays(1))
            errors.Add($"{Section}:Retry:FirstInterval is {retry.FirstInterval}; use a wait above zero and at most a day, e.g. 00:00:10.");
        if (!double.IsFinite(retry.BackoffCoefficient) || retry.BackoffCoefficient < 1 || retry.BackoffCoefficient > 100)
            errors.Add($"{Section}:Retry:BackoffCoefficient is {retry.BackoffCoefficient}; use 1 … 100 (1: equal waits).");
        if (retry.MaxInterval < retry.FirstInterval || retry.MaxInterval > TimeSpan.FromDays(7))
            errors.Add($"{Section}:Retry:MaxInterval is {retry.MaxInterval}; use at least {Section}:Retry:FirstInterval ({retry.FirstInterval}) and at most 7 days.");
        if (ProgressInterval < TimeSpan.Zero || ProgressInterval > TimeSpan.FromMinutes(10))
            errors.Add($"{Section}:ProgressInterval is {ProgressInterval}; use 0 (every step) … 00:10:00.");
        if (CancelCheckInterval < TimeSpan.FromMilliseconds(10) || CancelCheckInterval > TimeSpan.FromMinutes(10))
            errors.Add($"{Section}:CancelCheckInterval is {CancelCheckInterval}; use 00:00:00.010 … 00:10:00.");
        return errors;
    }
}

/// <summary>
/// Activity retries with exponential backoff; travels in orchestration inputs so replays see the same values. Only
/// failures that another attempt could cure are retried (<see cref="Failures.IsTransient"/>).
/// </summary>
public sealed record RetrySettings
{
    public int MaxAttempts { get; init; } = 3;
    public TimeSpan FirstInterval { get; init; } = TimeSpan.FromSeconds(10);
    public double BackoffCoefficient { get; init; } = 2.0;
    public TimeSpan MaxInterval { get; init; } = TimeSpan.FromMinutes(5);

    public TaskOptions ToTaskOptions() => MaxAttempts <= 1
        ? new TaskOptions()
        : TaskOptions.FromRetryPolicy(new RetryPolicy(MaxAttempts, FirstInterval, BackoffCoefficient, MaxInterval) { HandleFailure = Failures.IsTransient });
}
