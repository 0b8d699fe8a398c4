using System.Text.Json;

namespace Wuerstchen.Models.Loading;

/// <summary>One model's folder: its <c>config.json</c> and its safetensors weights (single file or sharded).</summary>
public sealed class ModelComponent
{
    public const string ConfigFile = "config.json";

    private static readonly string[] WeightBaseNames = ["diffusion_pytorch_model", "model"];

    public ModelComponent(string name, string directory)
    {
        Name = name;
        Directory = directory;
    }

    public string Name { get; }

    public string Directory { get; }

    public string ConfigPath => Path.Combine(Directory, ConfigFile);

    public T ReadConfig<T>() => ConfigReader.Read<T>(ConfigPath);

    /// <summary>
    /// The weight files of this component: <c>{diffusion_pytorch_model|model}[.variant].safetensors</c>, or the shards
    /// listed by the matching <c>.safetensors.index.json</c>. A requested variant (such as <c>fp16</c>) must exist.
    /// </summary>
    public IReadOnlyList<string> WeightFiles(string? variant = null)
    {
        string suffix = string.IsNullOrEmpty(variant) ? "" : "." + variant;
        foreach (string baseName in WeightBaseNames)
        {
            // diffusers and transformers name a variant's shard index "{base}.safetensors.index.{variant}.json".
            foreach (string index in new[] { $"{baseName}.safetensors.index{suffix}.json", $"{baseName}{suffix}.safetensors.index.json" })
            {
                if (File.Exists(Path.Combine(Directory, index)))
                    return ShardsOf(Path.Combine(Directory, index));
            }
            string single = Path.Combine(Directory, $"{baseName}{suffix}.safetensors");
            if (File.Exists(single))
                return [single];
        }

        var present = System.IO.Directory.EnumerateFiles(Directory).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray();
        string hint = present.Any(f => f!.EndsWith(".bin", StringComparison.Ordinal) || f.EndsWith(".pt", StringComparison.Ordinal) || f.EndsWith(".pth", StringComparison.Ordinal))
            ? " Pickled PyTorch weights are never loaded; convert them to safetensors first (wuerstchen models convert)."
            : "";
        throw new ModelConfigException(Directory,
            $"no {(suffix.Length == 0 ? "" : $"'{variant}' variant ")}safetensors weights (looked for {string.Join(", ", WeightBaseNames.Select(b => b + suffix + ".safetensors[.index.json]"))}; " +
            $"the folder has: {(present.Length == 0 ? "nothing" : string.Join(", ", present))}).{hint}");
    }

    /// <summary>Opens this component's weights for loading.</summary>
    public CheckpointWeights OpenWeights(string? variant = null) => CheckpointWeights.Open(WeightFiles(variant));

    private static IReadOnlyList<string> ShardsOf(string indexPath)
    {
        using var document = ConfigReader.ReadDocument(indexPath);
        if (!document.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
            throw new ModelConfigException(indexPath, "'weight_map' is missing or not an object.");
        string directory = Path.GetDirectoryName(indexPath)!;
        var shards = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var entry in map.EnumerateObject())
        {
            string? file = entry.Value.ValueKind == JsonValueKind.String ? entry.Value.GetString() : null;
            if (string.IsNullOrEmpty(file) || Path.IsPathRooted(file) || file.Contains("..", StringComparison.Ordinal) || file.Contains('/') || file.Contains('\\'))
                throw new ModelConfigException(indexPath, $"tensor '{entry.Name}' maps to an invalid shard name {entry.Value.GetRawText()}.");
            shards.Add(Path.Combine(directory, file));
        }
        if (shards.Count == 0)
            throw new ModelConfigException(indexPath, "'weight_map' lists no tensors.");
        foreach (string shard in shards)
        {
            if (!File.Exists(shard))
                throw new ModelConfigException(indexPath, $"shard '{Path.GetFileName(shard)}' is listed but missing.");
        }
        return shards.ToArray();
    }
}
