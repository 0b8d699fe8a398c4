using TorchSharp;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Pipelines;

/// <summary>Where and in which precision the models run.</summary>
public sealed record InferenceOptions
{
    /// <summary>float32 (default), bfloat16 or float16. On a CPU only float32 is fast.</summary>
    public ScalarType DType { get; init; } = ScalarType.Float32;

    public Device Device { get; init; } = CPU;

    /// <summary>A weights variant such as <c>fp16</c> (<c>*.fp16.safetensors</c>); null for the default files.</summary>
    public string? Variant { get; init; }

    /// <summary>At most this many images per Stage A decode call (a batch decodes in chunks); null decodes a batch at once.</summary>
    public int? DecodeBatch { get; init; }

    public void Validate()
    {
        if (DType is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16))
            throw new ArgumentException($"Inference runs in float32, bfloat16 or float16, not {DType}.", nameof(DType));
        if (DecodeBatch is < 1)
            throw new ArgumentOutOfRangeException(nameof(DecodeBatch), DecodeBatch, "Stage A decodes at least one image per call.");
    }
}
