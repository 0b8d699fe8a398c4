namespace Wuerstchen.Workflows.Retention;

/// <summary>How long finished work is kept. Bound from <c>Wuerstchen:Retention</c>.</summary>
public sealed class RetentionOptions
{
    public const string Section = "Wuerstchen:Retention";

    /// <summary>
    /// Finished (completed, failed, terminated) generations and bulk jobs older than this are purged: their Durable
    /// history and their intermediate blobs (latents, plans, progress). Images and model versions stay.
    /// </summary>
    public TimeSpan Period { get; set; } = TimeSpan.FromDays(7);

    /// <summary>Also delete the images of purged generations and bulk jobs (and the bulk manifests that list them).</summary>
    public bool PurgeImages { get; set; }

    public IReadOnlyList<string> Validate() =>
        Period <= TimeSpan.Zero ? [$"{Section}:Period is {Period}; give a positive period such as 7.00:00:00."] : [];
}
