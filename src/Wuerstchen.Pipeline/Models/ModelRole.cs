using Wuerstchen.Models.Loading;

namespace Wuerstchen.Pipeline.Models;

/// <summary>What a model name is asked to be: the Stage C prior pipeline or the Stage B/A decoder pipeline.</summary>
public enum ModelRole
{
    Prior,
    Decoder,
}

/// <summary>What each role loads: the pipeline class in <c>model_index.json</c> and the component folders it needs.</summary>
public static class ModelRoles
{
    public static string Describe(ModelRole role) => "the " + Noun(role);

    /// <summary><c>Stage C (prior) model</c> or <c>Stage B/A (decoder) model</c>.</summary>
    public static string Noun(ModelRole role) => role == ModelRole.Prior ? "Stage C (prior) model" : "Stage B/A (decoder) model";

    public static string PipelineClass(ModelRole role) => role == ModelRole.Prior ? "WuerstchenPriorPipeline" : "WuerstchenDecoderPipeline";

    /// <summary>The components the role's pipeline loads (as <c>WuerstchenPriorPipeline</c>/<c>WuerstchenDecoderPipeline.FromRepository</c> require them).</summary>
    public static IReadOnlyList<string> Components(ModelRole role) => role == ModelRole.Prior
        ? ["prior", "text_encoder", "tokenizer", "scheduler"]
        : ["decoder", "vqgan", "text_encoder", "tokenizer", "scheduler"];

    /// <summary>Why the folder cannot load as <paramref name="role"/> (in words without its path); null when it can.</summary>
    public static string? Unloadable(string folder, ModelRole role)
    {
        string expected = PipelineClass(role);
        string indexPath = Path.Combine(folder, ModelRepository.ModelIndexFile);
        if (!File.Exists(indexPath))
        {
            return File.Exists(Path.Combine(folder, ModelComponent.ConfigFile))
                ? $"it is a single model (a {ModelComponent.ConfigFile} without {ModelRepository.ModelIndexFile}), not a {expected}."
                : $"it holds no {ModelRepository.ModelIndexFile}.";
        }
        ModelIndex index;
        try
        {
            index = ModelIndex.Read(indexPath);
        }
        catch (Exception e) when (e is ModelConfigException or IOException or UnauthorizedAccessException)
        {
            return $"its {ModelRepository.ModelIndexFile} cannot be read.";
        }
        if (index.ClassName != expected)
            return $"it is a {index.ClassName}, not a {expected}.";
        var missing = Components(role).Where(c => !index.Components.ContainsKey(c) || !Directory.Exists(Path.Combine(folder, c))).ToArray();
        return missing.Length == 0 ? null : $"its pipeline lacks the component(s) {string.Join(", ", missing)}.";
    }
}
