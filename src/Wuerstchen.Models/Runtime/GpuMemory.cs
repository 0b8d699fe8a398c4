using System.Runtime.InteropServices;
using System.Text;

namespace Wuerstchen.Models.Runtime;

/// <summary>
/// Device memory in use, read from NVML (<c>libnvidia-ml.so.1</c>, part of the NVIDIA driver): TorchSharp has no
/// allocator statistics, so the peak is sampled on a background thread while a run goes on. It counts everything the
/// device holds for this process (the CUDA context and LibTorch's cached blocks included) minus what was in use before
/// the process touched the GPU: more than PyTorch's <c>max_memory_allocated</c>, which diffusers' anchor reports.
/// </summary>
public sealed class GpuMemory : IDisposable
{
    private readonly IntPtr _device;
    private readonly ulong _baseline;

    private GpuMemory(IntPtr device, string name, ulong total)
    {
        _device = device;
        Name = name;
        TotalBytes = total;
        _baseline = UsedBytes();
    }

    public string Name { get; }

    public ulong TotalBytes { get; }

    /// <summary>Opens the device that CUDA calls 0 (the first of <c>CUDA_VISIBLE_DEVICES</c>), or null without NVML.</summary>
    public static GpuMemory? TryOpen()
    {
        try
        {
            if (Nvml.nvmlInit_v2() != 0)
                return null;
            uint index = 0;
            string? visible = Environment.GetEnvironmentVariable("CUDA_VISIBLE_DEVICES")?.Split(',')[0].Trim();
            if (uint.TryParse(visible, out uint first))
                index = first;
            if (Nvml.nvmlDeviceGetHandleByIndex_v2(index, out var device) != 0 || Nvml.nvmlDeviceGetMemoryInfo(device, out var memory) != 0)
                return null;
            var name = new byte[96];
            string deviceName = Nvml.nvmlDeviceGetName(device, name, (uint)name.Length) == 0
                ? Encoding.ASCII.GetString(name, 0, Math.Max(0, Array.IndexOf(name, (byte)0))) : "NVIDIA GPU";
            return new GpuMemory(device, deviceName, memory.Total);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }

    public ulong UsedBytes() => Nvml.nvmlDeviceGetMemoryInfo(_device, out var memory) == 0 ? memory.Used : 0;

    /// <summary>Runs <paramref name="work"/> while sampling every 2 ms; returns its result and the peak above the baseline, in bytes.</summary>
    public (T Result, ulong PeakBytes) Track<T>(Func<T> work)
    {
        ulong peak = 0;
        using var stop = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                peak = Math.Max(peak, UsedBytes());
                await Task.Delay(2).ConfigureAwait(false);
            }
        });
        try
        {
            var result = work();
            peak = Math.Max(peak, UsedBytes());
            return (result, peak > _baseline ? peak - _baseline : 0);
        }
        finally
        {
            stop.Cancel();
            sampler.Wait();
        }
    }

    public void Dispose() => Nvml.nvmlShutdown();

    [StructLayout(LayoutKind.Sequential)]
    private struct MemoryInfo
    {
        public ulong Total;
        public ulong Free;
        public ulong Used;
    }

    private static class Nvml
    {
        private const string Library = "libnvidia-ml.so.1";

        [DllImport(Library)]
        public static extern int nvmlInit_v2();

        [DllImport(Library)]
        public static extern int nvmlShutdown();

        [DllImport(Library)]
        public static extern int nvmlDeviceGetHandleByIndex_v2(uint index, out IntPtr device);

        [DllImport(Library)]
        public static extern int nvmlDeviceGetMemoryInfo(IntPtr device, out MemoryInfo memory);

        [DllImport(Library)]
        public static extern int nvmlDeviceGetName(IntPtr device, byte[] name, uint length);
    }
}
