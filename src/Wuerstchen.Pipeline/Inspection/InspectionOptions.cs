namespace Wuerstchen.Pipeline.Inspection;

/// <summary>Options for <see cref="ModelInspector"/>.</summary>
public sealed record InspectionOptions
{
    /// <summary>The weight variant to inspect (such as <c>fp16</c>); null for the full weights.</summary>
    public string? Variant { get; init; }

    /// <summary>Whether to hash each weight file; the only step that reads tensor data.</summary>
    public bool ComputeSha256 { get; init; } = true;
}
