namespace Wuerstchen.Models.Loading;

/// <summary>
/// A model folder in the Hugging Face diffusers layout, as published: either a pipeline (<c>model_index.json</c> and one
/// folder per component, like <c>warp-ai/wuerstchen-prior</c>) or a single model (<c>config.json</c> and weights at the root,
/// like <c>warp-ai/wuerstchen-prior-model-base</c>).
/// </summary>
public sealed class ModelRepository
{
    public const string ModelIndexFile = "model_index.json";

    private ModelRepository(string root, ModelIndex? index)
    {
        Root = root;
        Index = index;
    }

    public string Root { get; }

    /// <summary>The pipeline index; null for a single-model folder.</summary>
    public ModelIndex? Index { get; }

    public static ModelRepository Open(string root)
    {
        string fullRoot = Path.GetFullPath(root);
        if (!Directory.Exists(fullRoot))
            throw new DirectoryNotFoundException($"Model folder '{fullRoot}' does not exist.");
        string indexPath = Path.Combine(fullRoot, ModelIndexFile);
        if (File.Exists(indexPath))
            return new ModelRepository(fullRoot, ModelIndex.Read(indexPath));
        if (File.Exists(Path.Combine(fullRoot, ModelComponent.ConfigFile)))
            return new ModelRepository(fullRoot, null);
        throw new ModelConfigException(fullRoot, $"neither {ModelIndexFile} (a pipeline) nor {ModelComponent.ConfigFile} (a single model) is in this folder.");
    }

    /// <summary>The component folder named <paramref name="name"/> (<c>prior</c>, <c>text_encoder</c>, <c>tokenizer</c>, …).</summary>
    public ModelComponent Component(string name)
    {
        if (Index is null)
            throw new ModelConfigException(Root, $"this is a single-model folder without {ModelIndexFile}; it has no component '{name}'.");
        if (!Index.Components.ContainsKey(name))
            throw new ModelConfigException(Index.FilePath, $"no component '{name}' (the pipeline has: {string.Join(", ", Index.Components.Keys)}).");
        string directory = Path.Combine(Root, name);
        if (!Directory.Exists(directory))
            throw new ModelConfigException(Index.FilePath, $"component '{name}' is listed but its folder '{directory}' is missing.");
        return new ModelComponent(name, directory);
    }

    /// <summary>The model at the root of a single-model folder.</summary>
    public ModelComponent RootModel()
    {
        if (Index is not null)
            throw new ModelConfigException(Index.FilePath, "this is a pipeline folder; name one of its components.");
        return new ModelComponent(Path.GetFileName(Root), Root);
    }
}
