using Wuerstchen.Pipeline.Generation;

namespace Wuerstchen.Workflows.Health;

/// <summary>
/// Which models a replica makes resident at start-up, before it reports ready. Bound from <c>Wuerstchen:Preload</c>.
/// The Functions app preloads by default; the CLI and the tests load on first use.
/// </summary>
public sealed class PreloadOptions
{
    public const string Section = "Wuerstchen:Preload";

    /// <summary>Load the models below in the background at start-up; readiness waits for them.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The Stage C model requests get when they name none; empty to preload no prior.</summary>
    public string Prior { get; set; } = ModelNames.DefaultPrior;

    /// <summary>The Stage B/A model requests get when they name none; empty to preload no decoder.</summary>
    public string Decoder { get; set; } = ModelNames.DefaultDecoder;

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        foreach (var (key, value) in new[] { (nameof(Prior), Prior), (nameof(Decoder), Decoder) })
        {
            if (!string.IsNullOrEmpty(value) && !Wuerstchen.Pipeline.Models.ModelLocator.IsWellFormed(value))
                errors.Add($"{Section}:{key} is '{value}'; name a model (such as {(key == nameof(Prior) ? ModelNames.DefaultPrior : ModelNames.DefaultDecoder)}) or leave it empty to preload none.");
        }
        return errors;
    }
}
