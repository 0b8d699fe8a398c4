namespace Wuerstchen.Pipeline.Conversion;

/// <summary>The element type tensors are written in.</summary>
public enum ConversionDType
{
    /// <summary>As stored in the checkpoint.</summary>
    Keep,

    /// <summary>Floating-point tensors as float32; integer and bool tensors stay as they are.</summary>
    Float32,

    /// <summary>Floating-point tensors as float16; integer and bool tensors stay as they are.</summary>
    Float16,
}

/// <summary>Replaces the key prefix <paramref name="From"/> with <paramref name="To"/> (e.g. <c>module.</c> → empty).</summary>
public sealed record KeyRename(string From, string To);

/// <summary>Options for <see cref="PickleCheckpointConverter"/>.</summary>
public sealed record PickleConversionOptions
{
    /// <summary>
    /// The top-level checkpoint entry that holds the state dict (such as <c>effnet_state_dict</c>); null when the
    /// checkpoint itself is the state dict.
    /// </summary>
    public string? StateDictKey { get; init; }

    /// <summary>Prefix renames, tried in order; the first that matches a key applies.</summary>
    public IReadOnlyList<KeyRename> Renames { get; init; } = [];

    public ConversionDType DType { get; init; } = ConversionDType.Keep;

    /// <summary>The most bytes the archive's <c>data.pkl</c> may inflate to (it holds names and shapes, not tensor data).</summary>
    public long MaxPickleBytes { get; init; } = 64L << 20;
}

/// <param name="ParameterCount">Elements of every written tensor, buffers included.</param>
public sealed record ConversionResult(string OutputPath, string? SourceKey, int TensorCount, long ParameterCount);
