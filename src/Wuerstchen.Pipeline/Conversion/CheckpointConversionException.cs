namespace Wuerstchen.Pipeline.Conversion;

/// <summary>A pickled checkpoint that cannot be converted: unreadable, without the requested key, or holding something other than tensors.</summary>
public class CheckpointConversionException : Exception
{
    public CheckpointConversionException(string filePath, string? key, string problem, Exception? inner = null)
        : base(key is null ? $"Checkpoint '{filePath}': {problem}" : $"Checkpoint '{filePath}', key '{key}': {problem}", inner)
    {
        FilePath = filePath;
        Key = key;
    }

    public string FilePath { get; }

    /// <summary>The state-dict key asked for; null when the whole checkpoint was the state dict.</summary>
    public string? Key { get; }
}

/// <summary>
/// A pickle that refers to Python globals outside the allow-list (or uses opcodes whose targets cannot be checked before
/// unpickling). Nothing in the file was unpickled.
/// </summary>
public sealed class UnsafePickleException : CheckpointConversionException
{
    public UnsafePickleException(string filePath, IReadOnlyList<string> refused)
        : base(filePath, null, $"the pickle refers to {string.Join(", ", refused)}, which a tensor checkpoint never needs; it was not unpickled.")
    {
        Refused = refused;
    }

    /// <summary>The refused globals (<c>module.name</c>) and opcodes.</summary>
    public IReadOnlyList<string> Refused { get; }
}
