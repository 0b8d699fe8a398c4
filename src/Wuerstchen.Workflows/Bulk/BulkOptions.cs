using Wuerstchen.Pipeline.Models;

namespace Wuerstchen.Workflows.Bulk;

/// <summary>Bulk generation. Bound from <c>Wuerstchen:Bulk</c>.</summary>
public sealed class BulkOptions
{
    public const string Section = "Wuerstchen:Bulk";

    /// <summary>The queue the bulk trigger listens on (the app setting <c>Wuerstchen__Bulk__QueueName</c>).</summary>
    public string QueueName { get; set; } = "generation-jobs";

    /// <summary>Prompts per Stage C / Stage B forward pass; unset, it follows the device (<see cref="DeviceProfile"/>: 16 on an 80 GB card, 4 on a CPU).</summary>
    public int? BatchSize { get; set; }

    /// <summary>The batch size to plan with: <see cref="BatchSize"/>, or the device's default.</summary>
    public int EffectiveBatchSize(ModelOptions models) => BatchSize ?? DeviceProfile.For(models).BulkBatchSize;

    /// <summary>Batches of one job in flight at once.</summary>
    public int MaxParallelism { get; set; } = 2;

    /// <summary>Prompts a job may hold.</summary>
    public int MaxPrompts { get; set; } = 10_000;

    /// <summary>
    /// The most work one job may ask for, in pixel-steps summed over its prompts (images × width × height × (Stage C +
    /// Stage B steps) each); a job over it is rejected whole, naming its cost and this limit.
    /// </summary>
    public long MaxWorkPerJob { get; set; } = 1_000_000_000_000;

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        // Azure Storage queue names: 3–63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit.
        if (QueueName is null || !System.Text.RegularExpressions.Regex.IsMatch(QueueName, "^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$"))
            errors.Add($"{Section}:QueueName is '{QueueName}'; a queue name has 3 … 63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit.");
        if (BatchSize is < 1 or > 256)
            errors.Add($"{Section}:BatchSize is {BatchSize}; use 1 … 256 prompts per forward pass.");
        if (MaxParallelism is < 1 or > 1000)
            errors.Add($"{Section}:MaxParallelism is {MaxParallelism}; use 1 … 1000 batches in flight.");
        if (MaxPrompts < 1)
            errors.Add($"{Section}:MaxPrompts is {MaxPrompts}; it must be at least 1.");
        if (MaxWorkPerJob < 1)
            errors.Add($"{Section}:MaxWorkPerJob is {MaxWorkPerJob}; it must be at least 1.");
        return errors;
    }
}
