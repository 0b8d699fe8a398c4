namespace Wuerstchen.Models.Loading;

/// <summary>A model repository file (model_index.json, config.json, a shard index) that is missing, malformed or inconsistent.</summary>
public sealed class ModelConfigException : Exception
{
    public ModelConfigException(string filePath, string problem, Exception? inner = null)
        : base($"'{filePath}': {problem}", inner)
    {
        FilePath = filePath;
    }

    public string FilePath { get; }
}
