namespace Wuerstchen.Pipeline.Models;

/// <summary>
/// A model that cannot load, and will not on another attempt: unknown, the wrong kind of pipeline, a bad config or
/// weights file, a fine-tuned version that fails its checksums. The message names no server paths.
/// </summary>
public sealed class ModelNotLoadableException(string stage, string name, Exception inner)
    : Exception($"Model '{name}' cannot be loaded for {stage}: {ErrorText.WithoutPaths(inner is UnknownModelException ? "it was not found." : inner.Message)}", inner)
{
    public string Stage { get; } = stage;

    public string Name { get; } = name;
}
