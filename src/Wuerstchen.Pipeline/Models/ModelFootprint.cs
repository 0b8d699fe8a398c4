using System.Globalization;
using TorchSharp;
using Wuerstchen.Models.IO;
using Wuerstchen.Models.Loading;

namespace Wuerstchen.Pipeline.Models;

/// <summary>
/// How much memory a model takes once loaded, estimated before loading it from its weight files' safetensors headers
/// (every tensor's shape; floating-point tensors at the precision the models run in), and the device defaults of
/// <see cref="ModelOptions.MemoryBudget"/>.
/// </summary>
public static partial class ModelFootprint
{
    /// <summary>The bytes the weights of the pipeline (or single model) in <paramref name="folder"/> take at <paramref name="dtype"/>.</summary>
    public static long EstimateBytes(string folder, torch.ScalarType dtype)
    {
        var repository = ModelRepository.Open(folder);
        var components = repository.Index is null
            ? [repository.RootModel()]
            : repository.Index.Components.Keys
                .Where(c => File.Exists(Path.Combine(repository.Root, c, ModelComponent.ConfigFile)))
                .Select(repository.Component);
        long total = 0;
        foreach (var component in components)
        {
            IReadOnlyList<string> files;
            try
            {
                files = component.WeightFiles();
            }
            catch (ModelConfigException)
            {
                continue; // a component without weights (a scheduler or tokenizer config)
            }
            foreach (string file in files)
                total += WeightBytes(file, dtype);
        }
        return total;
    }

    private static long WeightBytes(string file, torch.ScalarType dtype)
    {
        using var stream = File.OpenRead(file);
        var header = SafetensorsHeader.Read(stream, stream.Length, file);
        int size = ElementSize(dtype);
        return header.Tensors.Values.Sum(t => IsFloatingPoint(t.ScalarType) ? t.ElementCount * size : t.ByteLength);
    }

    private static bool IsFloatingPoint(torch.ScalarType type) =>
        type is torch.ScalarType.Float16 or torch.ScalarType.BFloat16 or torch.ScalarType.Float32 or torch.ScalarType.Float64;

    private static int ElementSize(torch.ScalarType dtype) => dtype switch
    {
        torch.ScalarType.Float64 => 8,
        torch.ScalarType.BFloat16 or torch.ScalarType.Float16 => 2,
        _ => 4,
    };

    /// <summary>Fraction of the device's memory resident models may take by default; the rest is for activations.</summary>
    public const double CudaDefaultFraction = 0.6;

    public const double CpuDefaultFraction = 0.5;

    /// <summary>Used when the GPU's memory cannot be read from the driver.</summary>
    public const long CudaFallbackBytes = 8L << 30;

    /// <summary>
    /// The default budget: on a GPU <see cref="CudaDefaultFraction"/> of device 0's memory (as the driver reports it,
    /// <see cref="GpuProbe"/>; <see cref="CudaFallbackBytes"/> when it cannot be read), on the CPU
    /// <see cref="CpuDefaultFraction"/> of the memory this process may use (the container's limit where there is one).
    /// </summary>
    public static long DefaultBudgetBytes(string device) => device == "cuda"
        ? GpuProbe.Current.Devices is [var first, ..] && first.TotalMemoryBytes > 0 ? (long)(first.TotalMemoryBytes * CudaDefaultFraction) : CudaFallbackBytes
        : (long)(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes * CpuDefaultFraction);

    /// <summary>Formats a byte count for logs and messages (binary units).</summary>
    public static string Format(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double value = bytes;
        int unit = 0;
        while (Math.Abs(value) >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }
        return unit == 0 ? $"{bytes} B" : value.ToString("0.##", CultureInfo.InvariantCulture) + " " + units[unit];
    }

    /// <summary>
    /// Parses a size such as <c>24GiB</c>, <c>512 MiB</c>, <c>1.5GB</c> or a plain number of bytes; binary (KiB, MiB,
    /// GiB, TiB) and decimal (KB, MB, GB, TB) units, any case.
    /// </summary>
    public static bool TryParseSize(string? text, out long bytes)
    {
        bytes = 0;
        if (string.IsNullOrWhiteSpace(text))
            return false;
        string trimmed = text.Trim();
        int split = trimmed.Length;
        while (split > 0 && char.IsAsciiLetter(trimmed[split - 1]))
            split--;
        long multiplier = trimmed[split..].ToUpperInvariant() switch
        {
            "" or "B" => 1,
            "KB" => 1000L,
            "MB" => 1000L * 1000,
            "GB" => 1000L * 1000 * 1000,
            "TB" => 1000L * 1000 * 1000 * 1000,
            "KIB" => 1L << 10,
            "MIB" => 1L << 20,
            "GIB" => 1L << 30,
            "TIB" => 1L << 40,
            _ => 0,
        };
        if (multiplier == 0 || !double.TryParse(trimmed[..split].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double value)
            || !double.IsFinite(value) || value <= 0 || value * multiplier >= long.MaxValue)
            return false;
        bytes = (long)(value * multiplier);
        return bytes > 0;
    }
}
