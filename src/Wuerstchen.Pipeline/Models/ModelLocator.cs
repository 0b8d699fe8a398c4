using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using Wuerstchen.Models.Loading;
using Wuerstchen.Pipeline.Hub;

namespace Wuerstchen.Pipeline.Models;

/// <summary>A model name that no folder under the model root answers to.</summary>
public sealed class UnknownModelException(string name, IReadOnlyList<string> searched)
    : Exception($"Model '{name}' was not found (looked in: {string.Join(", ", searched)}).")
{
    public string Name { get; } = name;

    public IReadOnlyList<string> Searched { get; } = searched;
}

/// <summary>
/// Maps model names (<c>warp-ai/wuerstchen-prior</c>) to folders in the published layout under the model root, Hub
/// models pinned to a revision (<c>warp-ai/wuerstchen-prior@v1.0</c>, see <see cref="HubModelName"/>) to the snapshot
/// that revision was downloaded as, and fine-tuned versions (<c>finetuned/{versionId}</c>) to the folders <see cref="FineTunedModels"/> materialises.
/// </summary>
public sealed partial class ModelLocator(IOptions<ModelOptions> options, FineTunedModels? fineTuned = null)
{
    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")]
    private static partial Regex NamePattern();

    /// <summary>A model name, or a Hub repository pinned to a revision (<see cref="HubModelName"/>: <c>owner/name@revision</c>).</summary>
    public static bool IsWellFormed(string? name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > 200)
            return false;
        var (repository, revision) = HubModelName.Split(name);
        if (revision is not null)
            return HubModelName.IsRepositoryId(repository) && HubModelName.IsValidRevision(revision);
        return NamePattern().IsMatch(name) && !name.Contains("..", StringComparison.Ordinal);
    }

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
        if (HubModelName.Split(name) is (var hubRepository, { } revision))
        {
            // A revision is only in the Hugging Face cache, where its download recorded the commit it resolved to.
            foreach (string hub in new[] { Path.Combine(root, "hub"), root })
            {
                var cache = new HubRepoCache(hub, hubRepository);
                candidates.Add(cache.ResolveCommit(revision) is { } commit ? cache.SnapshotFolder(commit) : $"{cache.RepoFolder} (no download of revision '{revision}')");
            }
            return candidates.FirstOrDefault(IsModelFolder);
        }
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

    /// <summary>
    /// Why <paramref name="name"/> cannot serve as <paramref name="role"/>, naming the models that can; null when it
    /// can. Checks what loading checks first (the pipeline class and its component folders) without loading anything;
    /// a fine-tuned version is a Stage C model when it is published. Messages name no server paths.
    /// </summary>
    public string? Problem(string name, ModelRole role)
    {
        if (FineTunedModels.TryParse(name, out _))
        {
            if (role != ModelRole.Prior)
                return $"'{name}' is a fine-tuned Stage C model; {ModelRoles.Describe(role)} needs a {ModelRoles.PipelineClass(role)}. {Valid(role)}";
            return Exists(name) ? null : $"Unknown model '{name}': no such fine-tuned version is published. {Valid(role)}";
        }
        if (TryResolve(name, out _) is not { } folder)
            return $"Unknown model '{name}'. {Valid(role)}";
        return ModelRoles.Unloadable(folder, role) is { } reason
            ? $"Model '{name}' cannot serve as {ModelRoles.Describe(role)}: {reason} {Valid(role)}"
            : null;
    }

    /// <summary>The model names under the root (and in <see cref="ModelOptions.Paths"/>) that can serve as <paramref name="role"/>.</summary>
    public IReadOnlyList<string> Available(ModelRole role)
    {
        var names = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var (name, path) in options.Value.Paths)
        {
            if (ModelRoles.Unloadable(Path.GetFullPath(path), role) is null)
                names.Add(name);
        }
        if (!string.IsNullOrWhiteSpace(options.Value.Root) && Directory.Exists(options.Value.Root))
        {
            string root = Path.GetFullPath(options.Value.Root);
            foreach (string first in SubFolders(root).Where(f => !f.StartsWith('.') && f != "hub" && !f.StartsWith("models--", StringComparison.Ordinal)))
            {
                if (ModelRoles.Unloadable(Path.Combine(root, first), role) is null)
                    names.Add(first);
                else
                    foreach (string second in SubFolders(Path.Combine(root, first)).Where(f => !f.StartsWith('.')))
                    {
                        if (ModelRoles.Unloadable(Path.Combine(root, first, second), role) is null)
                            names.Add($"{first}/{second}");
                    }
            }
            foreach (string hub in new[] { Path.Combine(root, "hub"), root })
            {
                foreach (string repository in SubFolders(hub).Where(f => f.StartsWith("models--", StringComparison.Ordinal)))
                {
                    string name = repository["models--".Length..].Replace("--", "/", StringComparison.Ordinal);
                    if (TryResolve(name, out _) is { } snapshot && ModelRoles.Unloadable(snapshot, role) is null)
                        names.Add(name);
                    foreach (var (revision, _) in HubModelName.CachedRevisions(Path.Combine(hub, repository)).Where(r => r.Revision != HuggingFaceHubClient.DefaultRevision))
                    {
                        string pinned = HubModelName.WithRevision(name, revision);
                        if (TryResolve(pinned, out _) is { } revisionSnapshot && ModelRoles.Unloadable(revisionSnapshot, role) is null)
                            names.Add(pinned);
                    }
                }
            }
        }
        return names.ToArray();
    }

    private string Valid(ModelRole role)
    {
        const int MaxListed = 20;
        var names = Available(role);
        string listed = names.Count == 0 ? "none is installed" : string.Join(", ", names.Take(MaxListed)) + (names.Count > MaxListed ? $" and {names.Count - MaxListed} more" : "");
        return role == ModelRole.Prior
            ? $"Valid {ModelRoles.Noun(role)}s: {listed}; or a published fine-tuned version, finetuned/{{versionId}}."
            : $"Valid {ModelRoles.Noun(role)}s: {listed}.";
    }

    private static IEnumerable<string> SubFolders(string folder)
    {
        try
        {
            return Directory.Exists(folder) ? Directory.EnumerateDirectories(folder).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToArray() : [];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    private static bool IsModelFolder(string path) =>
        File.Exists(Path.Combine(path, ModelRepository.ModelIndexFile)) || File.Exists(Path.Combine(path, ModelComponent.ConfigFile));
}
