namespace Wuerstchen.Pipeline.Models;

/// <summary>
/// Defaults that follow the card: how many prompts a bulk batch holds, and how many images Stage A decodes at once. At
/// 1024² in bfloat16 a Stage B / Stage A batch needs about 1 GiB of activations per image beside ~6 GiB of weights; the
/// GPU's throughput per image keeps improving up to a batch of about 8 and flattens by 16 (the diffusers anchor's figures
/// in docs/performance.md). So: 16 on 70 GiB and more (A100 80 GB, H100, H200), 8 on 35 GiB and more (A100 40 GB, L40S),
/// 4 below, with Stage A decoding 2 images at a time on cards under 24 GiB (T4, A10G's 24 GB counts as above). On a CPU,
/// batches of 4 and one decode per batch. The same size bounds a batch of concurrent requests (<c>Wuerstchen:Batching</c>),
/// whose first request waits up to <see cref="BatchMaxWait"/> for others: 20 ms on a GPU (under 2 % of a 1024² image's
/// time there), none on a CPU, where a step takes seconds and only requests already queued are worth batching.
/// </summary>
public sealed record DeviceProfile(int BulkBatchSize, int? DecodeBatch, string Description)
{
    private static readonly Lazy<DeviceProfile> Cuda = new(ForCuda);

    public static DeviceProfile Cpu { get; } = new(4, null, "CPU") { BatchMaxWait = TimeSpan.Zero };

    /// <summary>How long the first request of a batch waits for others to join by default.</summary>
    public TimeSpan BatchMaxWait { get; init; } = TimeSpan.FromMilliseconds(20);

    /// <summary>The profile of the configured device; for CUDA the first card's memory as the driver reports it (<see cref="GpuProbe"/>).</summary>
    public static DeviceProfile For(ModelOptions options) => options.Device == "cuda" ? Cuda.Value : Cpu;

    /// <summary>The profile of a card with <paramref name="totalBytes"/> of memory.</summary>
    public static DeviceProfile ForCardMemory(double totalBytes, string name)
    {
        double gib = totalBytes / (1L << 30);
        string description = $"{name}, {gib:F0} GiB";
        return gib >= 70 ? new DeviceProfile(16, null, description)
            : gib >= 35 ? new DeviceProfile(8, null, description)
            : gib >= 22 ? new DeviceProfile(4, null, description)
            : new DeviceProfile(4, 2, description);
    }

    private static DeviceProfile ForCuda()
    {
        var gpu = GpuProbe.Current;
        // Without the driver's answer the card is unknown: the small-card profile cannot run out of memory where the others would.
        return gpu.Devices.Count == 0
            ? new DeviceProfile(4, 2, $"CUDA device of unknown memory ({gpu.Problem})")
            : ForCardMemory(gpu.Devices[0].TotalMemoryBytes, gpu.Devices[0].Name);
    }
}
