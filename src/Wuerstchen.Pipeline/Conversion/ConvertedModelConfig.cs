using System.Text.Json.Nodes;
using Wuerstchen.Models.Effnet;
using Wuerstchen.Models.IO;
using Wuerstchen.Models.Loading;

namespace Wuerstchen.Pipeline.Conversion;

/// <summary>
/// Makes a converted checkpoint a model folder that loads: for tensors it recognises (the EfficientNet encoder of
/// <c>model_v2_stage_b.pt</c>: <c>backbone.*</c> and <c>mapper.0.weight</c>), it writes the <c>config.json</c> their
/// shapes imply beside the weights.
/// </summary>
public static class ConvertedModelConfig
{
    /// <summary>The weights file name a single-model folder loads (<see cref="ModelComponent"/>).</summary>
    public const string WeightsFile = "model.safetensors";

    /// <summary>Writes <c>config.json</c> beside <paramref name="weightsPath"/> where it can; the sentence says what was done and what is left to do.</summary>
    public static string WriteBeside(string weightsPath)
    {
        string folder = Path.GetDirectoryName(Path.GetFullPath(weightsPath))!;
        string configPath = Path.Combine(folder, ModelComponent.ConfigFile);
        using var file = SafetensorsFile.Open(weightsPath);
        var tensors = file.Tensors;
        bool effnet = tensors.TryGetValue("mapper.0.weight", out var mapper) && mapper.Shape.Length == 4 && tensors.Keys.Any(k => k.StartsWith("backbone.", StringComparison.Ordinal));
        if (!effnet)
            return $"No config.json written: these tensors are not a model this project recognises; a model folder needs a config.json beside weights named {WeightsFile}.";
        string loadable = Path.GetFileName(weightsPath) == WeightsFile
            ? $"the folder {folder} loads as the EfficientNet encoder (--effnet {folder}, or name it in Wuerstchen:Training:EffnetModel)."
            : $"rename the weights to {WeightsFile} for the folder to load.";
        if (File.Exists(configPath))
            return $"Kept the existing {configPath}; {loadable}";
        var config = new JsonObject
        {
            ["c_latent"] = mapper!.Shape[0],
            ["c_cond"] = mapper.Shape[1],
            ["effnet"] = EfficientNetEncoderConfig.EfficientNetV2S,
        };
        File.WriteAllText(configPath, config.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n");
        return $"Wrote {configPath} (EfficientNet encoder: c_latent {mapper.Shape[0]}, c_cond {mapper.Shape[1]}); {loadable}";
    }
}
