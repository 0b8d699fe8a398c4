using Microsoft.DurableTask;

namespace Wuerstchen.Workflows;

/// <summary>How orchestrations retry and report. Bound from <c>Wuerstchen:Workflows</c>.</summary>
public sealed class WorkflowOptions
{
    public const string Section = "Wuerstchen:Workflows";

    public RetrySettings Retry { get; set; } = new();

    /// <summary>How often a running stage publishes its step.</summary>
    public TimeSpan ProgressInterval { get; set; } = TimeSpan.FromSeconds(1);
}

/// <summary>Activity retries with exponential backoff; travels in orchestration inputs so replays see the same values.</summary>
public sealed record RetrySettings
{
    public int MaxAttempts { get; init; } = 3;
    public TimeSpan FirstInterval { get; init; } = TimeSpan.FromSeconds(10);
    public double BackoffCoefficient { get; init; } = 2.0;
    public TimeSpan MaxInterval { get; init; } = TimeSpan.FromMinutes(5);

    public TaskOptions ToTaskOptions() => MaxAttempts <= 1
        ? new TaskOptions()
        : TaskOptions.FromRetryPolicy(new RetryPolicy(MaxAttempts, FirstInterval, BackoffCoefficient, MaxInterval));
}
