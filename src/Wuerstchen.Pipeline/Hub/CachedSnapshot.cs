using Wuerstchen.Models.Loading;

namespace Wuerstchen.Pipeline.Hub;

/// <summary>What the cache holds of a repository revision, and what a pipeline would still need from it.</summary>
/// <param name="Commit">The cached commit of the revision; null when none is cached.</param>
/// <param name="Files">Repository paths present in the snapshot that the pipeline needs, in ordinal order.</param>
/// <param name="Missing">Repository paths the pipeline needs that are absent (or whose blob is gone); <c>refs/{revision}</c> when nothing is cached.</param>
internal sealed record CachedSnapshot(string? Commit, IReadOnlyList<string> Files, IReadOnlyList<string> Missing)
{
    /// <summary>
    /// Checks the cached snapshot of <paramref name="revision"/> without the network: <c>model_index.json</c> (or a root
    /// <c>config.json</c>), every component folder, each folder's configuration, and a model's weights in
    /// <paramref name="variant"/> (or the full ones where the folder has no such variant), every shard of an index included.
    /// </summary>
    public static CachedSnapshot Inspect(HubRepoCache cache, string revision, string? variant)
    {
        string? commit = cache.ResolveCommit(revision);
        if (commit is null)
            return new CachedSnapshot(null, [], [$"refs/{revision}"]);

        string root = cache.SnapshotFolder(commit);
        var files = new List<string>();
        var missing = new List<string>();
        ModelIndex? index = null;
        string indexPath = Path.Combine(root, ModelRepository.ModelIndexFile);
        if (HubRepoCache.IsPresent(indexPath))
        {
            index = ModelIndex.Read(indexPath);
            files.Add(ModelRepository.ModelIndexFile);
        }
        else if (!HubRepoCache.IsPresent(Path.Combine(root, ModelComponent.ConfigFile)))
        {
            return new CachedSnapshot(commit, [], [$"{ModelRepository.ModelIndexFile} (or {ModelComponent.ConfigFile} for a single model)"]);
        }

        foreach (string folder in PipelineFileSelector.Folders(index))
            InspectFolder(root, folder, index?.Components[folder], variant, files, missing);
        return new CachedSnapshot(commit, files.Order(StringComparer.Ordinal).ToArray(), missing.Order(StringComparer.Ordinal).ToArray());
    }

    private static void InspectFolder(string root, string folder, ModelIndexComponent? component, string? variant, List<string> files, List<string> missing)
    {
        string directory = folder.Length == 0 ? root : Path.Combine(root, folder);
        string prefix = folder.Length == 0 ? "" : folder + "/";
        if (!Directory.Exists(directory))
        {
            missing.Add($"{prefix} (the whole component)");
            return;
        }

        // Dangling symlinks are listed too: their names say what is missing.
        var names = new DirectoryInfo(directory).EnumerateFiles().Select(f => f.Name).ToArray();
        var selection = PipelineFileSelector.Select(names, variant);
        bool hasConfig = names.Contains(ModelComponent.ConfigFile, StringComparer.Ordinal);
        if (hasConfig || selection.HasWeights)
        {
            if (!hasConfig)
                missing.Add(prefix + ModelComponent.ConfigFile);
            if (!selection.HasWeights)
                missing.Add(prefix + PipelineFileSelector.ExpectedWeightName(component?.Library, variant));
        }
        else if (selection.Files.Count == 0)
        {
            missing.Add(prefix + ExpectedConfigName(component?.ClassName));
        }

        var needed = selection.Files.ToList();
        if (selection.WeightIndex is { } weightIndex && HubRepoCache.IsPresent(Path.Combine(directory, weightIndex)))
            needed.AddRange(PipelineFileSelector.ShardsOf(Path.Combine(directory, weightIndex), prefix + weightIndex));
        foreach (string name in needed)
            (HubRepoCache.IsPresent(Path.Combine(directory, name)) ? files : missing).Add(prefix + name);
    }

    private static string ExpectedConfigName(string? className) => className switch
    {
        not null when className.EndsWith("Scheduler", StringComparison.Ordinal) => "scheduler_config.json",
        not null when className.Contains("Tokenizer", StringComparison.Ordinal) => "tokenizer_config.json",
        _ => ModelComponent.ConfigFile,
    };
}
