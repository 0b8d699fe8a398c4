using System.Text.Json;
using Wuerstchen.Models.Loading;

namespace Wuerstchen.Pipeline.Hub;

/// <summary>What to take from one folder of a repository: its configuration and tokenizer files, and its weights.</summary>
/// <param name="Files">File names (within the folder) to fetch; the weight index, when there is one, is among them.</param>
/// <param name="WeightIndex">The <c>*.safetensors.index.json</c> whose shards are the weights; null for a single weight file or none.</param>
/// <param name="VariantMissing">A variant was asked for, the folder lacks it, and the full weights were taken instead.</param>
internal sealed record FolderSelection(IReadOnlyList<string> Files, string? WeightIndex, bool VariantMissing)
{
    public bool HasWeights => WeightIndex is not null || Files.Any(f => f.EndsWith(".safetensors", StringComparison.Ordinal));
}

/// <summary>
/// The files of a diffusers repository that a pipeline needs: <c>model_index.json</c>; per component folder (or the
/// root of a single-model repository) <c>config.json</c> or <c>scheduler_config.json</c>, the tokenizer files, and the
/// safetensors weights, as one file or as the shards of an index, in the requested variant. Everything else (pickled
/// <c>.bin</c>/<c>.ckpt</c>/<c>.pt</c>, ONNX, Flax, TensorFlow weights, READMEs) is never selected.
/// </summary>
internal static class PipelineFileSelector
{
    public static readonly string[] ConfigFiles = [ModelComponent.ConfigFile, "scheduler_config.json"];

    public static readonly string[] TokenizerFiles =
        ["vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"];

    // Same base names, in the same order, as ModelComponent.WeightFiles.
    private static readonly string[] WeightBaseNames = ["diffusion_pytorch_model", "model"];

    /// <summary>The folders to look in: the components <c>model_index.json</c> names (with a class), or the root.</summary>
    public static IReadOnlyList<string> Folders(ModelIndex? index) =>
        index is null ? [""] : index.Components.Values.Where(c => c.ClassName is not null).Select(c => c.Name).Order(StringComparer.Ordinal).ToArray();

    /// <summary>The weight file names a folder of <paramref name="library"/> (<c>diffusers</c>, <c>transformers</c>) would have, for messages.</summary>
    public static string ExpectedWeightName(string? library, string? variant)
    {
        string suffix = variant is null ? "" : "." + variant;
        return library switch
        {
            "diffusers" => $"diffusion_pytorch_model{suffix}.safetensors",
            "transformers" => $"model{suffix}.safetensors",
            _ => $"diffusion_pytorch_model{suffix}.safetensors or model{suffix}.safetensors",
        };
    }

    /// <param name="names">The file names directly inside the folder.</param>
    public static FolderSelection Select(IReadOnlyCollection<string> names, string? variant)
    {
        var present = new HashSet<string>(names, StringComparer.Ordinal);
        var files = ConfigFiles.Concat(TokenizerFiles).Where(present.Contains).ToList();

        var (weights, index) = FindWeights(present, variant);
        bool variantMissing = false;
        if (weights is null && variant is not null)
        {
            (weights, index) = FindWeights(present, null);
            variantMissing = weights is not null;
        }
        if (weights is not null)
            files.Add(weights);
        return new FolderSelection(files, index, variantMissing);
    }

    /// <summary>
    /// The shard file names an index's <c>weight_map</c> lists; each must be a plain <c>.safetensors</c> file name
    /// next to the index.
    /// </summary>
    public static IReadOnlyList<string> ShardsOf(string indexPath, string repoPath)
    {
        using var document = ConfigReader.ReadDocument(indexPath);
        if (!document.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
            throw new ModelConfigException(repoPath, "'weight_map' is missing or not an object.");
        var shards = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var entry in map.EnumerateObject())
        {
            string? shard = entry.Value.ValueKind == JsonValueKind.String ? entry.Value.GetString() : null;
            if (shard is null || !shard.EndsWith(".safetensors", StringComparison.Ordinal) || shard.Contains('/') || shard.Contains('\\') || shard.StartsWith('.'))
                throw new ModelConfigException(repoPath, $"tensor '{entry.Name}' maps to {entry.Value.GetRawText()}, not a safetensors file name beside the index.");
            shards.Add(shard);
        }
        if (shards.Count == 0)
            throw new ModelConfigException(repoPath, "'weight_map' lists no tensors.");
        return shards.ToArray();
    }

    private static (string? File, string? Index) FindWeights(HashSet<string> present, string? variant)
    {
        foreach (string baseName in WeightBaseNames)
        {
            // diffusers and transformers insert the variant before an index's last extension; ModelComponent looks for it
            // before ".safetensors".
            string[] indexNames = variant is null
                ? [$"{baseName}.safetensors.index.json"]
                : [$"{baseName}.safetensors.index.{variant}.json", $"{baseName}.{variant}.safetensors.index.json"];
            string? index = indexNames.FirstOrDefault(present.Contains);
            if (index is not null)
                return (index, index);
            string single = variant is null ? $"{baseName}.safetensors" : $"{baseName}.{variant}.safetensors";
            if (present.Contains(single))
                return (single, null);
        }
        return (null, null);
    }
}
