namespace Wuerstchen.Pipeline.Models;

/// <summary>Where the models are and how they run. Bound from the configuration section <c>Wuerstchen:Models</c>.</summary>
public sealed class ModelOptions
{
    public const string Section = "Wuerstchen:Models";

    /// <summary>
    /// The folder holding the model repositories: either one folder per model name (<c>{Root}/warp-ai/wuerstchen-prior</c>)
    /// or a Hugging Face cache (<c>{Root}/hub/models--warp-ai--wuerstchen-prior/snapshots/…</c>).
    /// </summary>
    public string Root { get; set; } = "";

    /// <summary>Explicit folders for model names, looked up before <see cref="Root"/> (e.g. a checkout of a model elsewhere).</summary>
    public IDictionary<string, string> Paths { get; set; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>
    /// A writable local folder where fine-tuned versions are materialised from the store before they load (the model
    /// root may be a read-only mount). Default: <c>wuerstchen-models</c> in the system's temp folder.
    /// </summary>
    public string? CacheRoot { get; set; }

    /// <summary>
    /// The most the fine-tuned versions under <see cref="CacheRoot"/> may take, in GiB. Materialising a version first
    /// evicts the least recently used others (never one used within the last minutes) to stay under it; one variant
    /// (EMA or raw) of a full-size prior takes about 4 GB.
    /// </summary>
    public double CacheMaxGiB { get; set; } = 16;

    /// <summary><c>cpu</c> or <c>cuda</c>.</summary>
    public string Device { get; set; } = "cpu";

    /// <summary><c>float32</c>, <c>bfloat16</c> or <c>float16</c>.</summary>
    public string Precision { get; set; } = "float32";

    /// <summary>
    /// How much memory resident pipelines may take before the least recently used idle one is unloaded: a size such as
    /// <c>24GiB</c> or a number of bytes. Unset: <see cref="ModelFootprint.DefaultBudgetBytes"/> of the device.
    /// </summary>
    public string? MemoryBudget { get; set; }

    /// <summary><see cref="MemoryBudget"/> in bytes; null when unset (or invalid, which validation reports).</summary>
    public long? MemoryBudgetBytes => ModelFootprint.TryParseSize(MemoryBudget, out long bytes) ? bytes : null;

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(Root) && Paths.Count == 0)
            errors.Add($"{Section}:Root is not set; point it at the folder that holds the model repositories.");
        if (Device is not ("cpu" or "cuda"))
            errors.Add($"{Section}:Device is '{Device}'; use cpu or cuda.");
        if (!(CacheMaxGiB > 0))
            errors.Add($"{Section}:CacheMaxGiB is {CacheMaxGiB}; give the model cache a positive size in GiB.");
        if (Precision is not ("float32" or "bfloat16" or "float16"))
            errors.Add($"{Section}:Precision is '{Precision}'; use float32, bfloat16 or float16.");
        if (!string.IsNullOrWhiteSpace(MemoryBudget) && MemoryBudgetBytes is null)
            errors.Add($"{Section}:MemoryBudget is '{MemoryBudget}'; use a positive size such as 24GiB or 512MiB, or leave it unset for the device's default.");
        return errors;
    }
}
