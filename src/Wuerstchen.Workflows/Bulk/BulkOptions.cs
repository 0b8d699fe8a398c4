namespace Wuerstchen.Workflows.Bulk;

/// <summary>Bulk generation. Bound from <c>Wuerstchen:Bulk</c>.</summary>
public sealed class BulkOptions
{
    public const string Section = "Wuerstchen:Bulk";

    /// <summary>The queue the bulk trigger listens on (the app setting <c>Wuerstchen__Bulk__QueueName</c>).</summary>
    public string QueueName { get; set; } = "generation-jobs";

    /// <summary>Prompts per Stage C / Stage B forward pass.</summary>
    public int BatchSize { get; set; } = 4;

    /// <summary>Batches of one job in flight at once.</summary>
    public int MaxParallelism { get; set; } = 2;

    /// <summary>Prompts a job may hold.</summary>
    public int MaxPrompts { get; set; } = 10_000;

    /// <summary>
    /// The most work one job may ask for, in pixel-steps summed over its prompts (images × width × height × (Stage C +
    /// Stage B steps) each); a job over it is rejected whole, naming its cost and this limit.
    /// </summary>
    public long MaxWorkPerJob { get; set; } = 1_000_000_000_000;
}
