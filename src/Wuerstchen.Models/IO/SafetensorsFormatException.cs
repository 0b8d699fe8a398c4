namespace Wuerstchen.Models.IO;

/// <summary>A safetensors file that is malformed, truncated or inconsistent. Names the file and, where known, the tensor.</summary>
public sealed class SafetensorsFormatException : FormatException
{
    public SafetensorsFormatException(string filePath, string? tensorName, string problem)
        : base(tensorName is null
            ? $"Invalid safetensors file '{filePath}': {problem}"
            : $"Invalid safetensors file '{filePath}', tensor '{tensorName}': {problem}")
    {
        FilePath = filePath;
        TensorName = tensorName;
    }

    public string FilePath { get; }

    public string? TensorName { get; }
}
