using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using Wuerstchen.Models.Loading;

namespace Wuerstchen.Pipeline.Models;

/// <summary>A model name that no folder under the model root answers to.</summary>
public sealed class UnknownModelException(string name, IReadOnlyList<string> searched)
    : Exception($"Model '{name}' was not found (looked in: {string.Join(", ", searched)}).")
{
    public string Name { get; } = name;

    public IReadOnlyList<string> Searched { get; } = searched;
}

/// <summary>
/// Maps model names (<c>warp-ai/wuerstchen-prior</c>) to folders in the published layout under the model root, and
/// fine-tuned versions (<c>finetuned/{versionId}</c>) to the folders <see cref="FineTunedModels"/> materialises.
/// </summary>
public sealed partial class ModelLocator(IOptions<ModelOptions> options, FineTunedModels? fineTuned = null)
{
    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")]
    private static partial Regex NamePattern();

    public static bool IsWellFormed(string? name) =>
        !string.IsNullOrEmpty(name) && name.Length <= 200 && NamePattern().IsMatch(name) && !name.Contains("..", StringComparison.Ordinal);

    /// <summary>The model folder for <paramref name="name"/>, or null with the places searched.</summary>
    public string? TryResolve(string name, out IReadOnlyList<string> searched)
    {
        var candidates = new List<string>();
        searched = candidates;
        if (options.Value.Paths.TryGetValue(name, out var explicitPath))
            candidates.Add(Path.GetFullPath(explicitPath));
        if (!IsWellFormed(name) || string.IsNullOrWhiteSpace(options.Value.Root))
            return candidates.FirstOrDefault(IsModelFolder);
        if (fineTuned is not null && FineTunedModels.TryParse(name, out _))
        {
            string? local = fineTuned.TryLocal(name);
            candidates.Add(local ?? $"{name} in the model store (not yet materialised)");
            return local;
        }
        string root = Path.GetFullPath(options.Value.Root);
        candidates.Add(Path.Combine(root, name));
        string cacheName = "models--" + name.Replace("/", "--", StringComparison.Ordinal);
        foreach (string hub in new[] { Path.Combine(root, "hub"), root })
        {
            string repository = Path.Combine(hub, cacheName);
            string reference = Path.Combine(repository, "refs", "main");
            if (File.Exists(reference))
                candidates.Add(Path.Combine(repository, "snapshots", File.ReadAllText(reference).Trim()));
        }
        return candidates.FirstOrDefault(IsModelFolder);
    }

    /// <summary>The model folder for <paramref name="name"/>; a fine-tuned version is materialised first if need be.</summary>
    public string Resolve(string name)
    {
        if (TryResolve(name, out var searched) is { } path)
            return path;
        if (fineTuned is not null && FineTunedModels.TryParse(name, out _) && fineTuned.Exists(name))
            return fineTuned.Materialise(name, Resolve);
        throw new UnknownModelException(name, searched);
    }

    /// <summary>
    /// The name a request should carry: a fine-tuned name without a revision becomes the newest revision's name
    /// (<see cref="FineTunedModels.PinAsync"/>), so what the request computes, caches and records follows the weights it
    /// was given; any other name is returned as it is.
    /// </summary>
    public string Pin(string name) => fineTuned is not null && FineTunedModels.TryParse(name, out _) ? fineTuned.Pin(name) : name;

    public bool Exists(string name) =>
        TryResolve(name, out _) is not null || (fineTuned is not null && FineTunedModels.TryParse(name, out _) && fineTuned.Exists(name));

    private static bool IsModelFolder(string path) =>
        File.Exists(Path.Combine(path, ModelRepository.ModelIndexFile)) || File.Exists(Path.Combine(path, ModelComponent.ConfigFile));
}
