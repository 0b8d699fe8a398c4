using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Wuerstchen.Pipeline.Models;

/// <summary>One GPU as the NVIDIA driver reports it.</summary>
/// <param name="ComputeCapability">As <c>major.minor</c>: 7.5 for a T4, 8.0 for an A100, 9.0 for an H100.</param>
public sealed record GpuDevice(int Index, string Name, string ComputeCapability, long TotalMemoryBytes);

/// <summary>
/// What the NVIDIA driver of this machine offers, read straight from the driver (not through LibTorch): the kernel
/// driver version, the CUDA version the driver supports, and each device's name, compute capability and memory.
/// <see cref="Problem"/> says why nothing could be read (no driver library, no device, an error code).
/// </summary>
public sealed record GpuInfo(string? DriverVersion, string? CudaDriverVersion, IReadOnlyList<GpuDevice> Devices, string? Problem)
{
    /// <summary>The first device's compute capability as a number (7.5, 8.0 …), or null without a device.</summary>
    public double? ComputeCapability =>
        Devices.Count > 0 && double.TryParse(Devices[0].ComputeCapability, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) ? value : null;
}

/// <summary>
/// Reads <see cref="GpuInfo"/> once per process. The kernel driver version comes from <c>/proc/driver/nvidia/version</c>
/// (visible in containers started by the NVIDIA runtime) or else from NVML (<c>libnvidia-ml.so.1</c>, mounted with the
/// driver's <c>utility</c> capability); the CUDA version and the devices from the CUDA driver API (<c>libcuda.so.1</c>,
/// the <c>compute</c> capability). Neither library ships in the image: both come with the host's driver, so their absence
/// is reported, never thrown.
/// </summary>
public static unsafe class GpuProbe
{
    private const string ProcVersionFile = "/proc/driver/nvidia/version";
    private const int ComputeCapabilityMajor = 75; // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
    private const int ComputeCapabilityMinor = 76; // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR

    private static readonly Lazy<GpuInfo> Cached = new(() => Read(ProcVersionFile, "libcuda.so.1", "libnvidia-ml.so.1"));

    public static GpuInfo Current => Cached.Value;

    internal static GpuInfo Read(string procVersionFile, string cudaLibrary, string nvmlLibrary)
    {
        string? driver = File.Exists(procVersionFile) ? ParseKernelModuleVersion(File.ReadAllText(procVersionFile)) : null;
        driver ??= NvmlDriverVersion(nvmlLibrary);
        if (!NativeLibrary.TryLoad(cudaLibrary, out IntPtr cuda))
            return new GpuInfo(driver, null, [], $"{cudaLibrary} (the NVIDIA driver's CUDA library) is not present: no NVIDIA driver is mounted into this container.");

        var getVersion = (delegate* unmanaged<int*, int>)Export(cuda, "cuDriverGetVersion");
        var init = (delegate* unmanaged<uint, int>)Export(cuda, "cuInit");
        var getCount = (delegate* unmanaged<int*, int>)Export(cuda, "cuDeviceGetCount");
        var getDevice = (delegate* unmanaged<int*, int, int>)Export(cuda, "cuDeviceGet");
        var getName = (delegate* unmanaged<byte*, int, int, int>)Export(cuda, "cuDeviceGetName");
        var getAttribute = (delegate* unmanaged<int*, int, int, int>)Export(cuda, "cuDeviceGetAttribute");
        var totalMemory = (delegate* unmanaged<nuint*, int, int>)Export(cuda, "cuDeviceTotalMem_v2");
        if (getVersion == null || init == null || getCount == null || getDevice == null || getName == null || getAttribute == null || totalMemory == null)
            return new GpuInfo(driver, null, [], $"{cudaLibrary} lacks a CUDA driver API entry point; the driver is too old or not NVIDIA's.");

        int version;
        string? cudaVersion = getVersion(&version) == 0 ? FormatCudaVersion(version) : null;
        int status = init(0);
        if (status != 0)
            return new GpuInfo(driver, cudaVersion, [], $"cuInit failed with CUDA error {status} (100 = no device, 999 = unknown, often a driver/library mismatch).");
        int count;
        status = getCount(&count);
        if (status != 0 || count == 0)
            return new GpuInfo(driver, cudaVersion, [], status != 0 ? $"cuDeviceGetCount failed with CUDA error {status}." : "The driver reports no CUDA device.");

        var devices = new List<GpuDevice>(count);
        byte* name = stackalloc byte[256];
        for (int i = 0; i < count; i++)
        {
            int device, major, minor;
            nuint bytes;
            if (getDevice(&device, i) != 0 || getName(name, 256, device) != 0 || getAttribute(&major, ComputeCapabilityMajor, device) != 0
                || getAttribute(&minor, ComputeCapabilityMinor, device) != 0 || totalMemory(&bytes, device) != 0)
                return new GpuInfo(driver, cudaVersion, devices, $"The driver would not describe device {i}.");
            devices.Add(new GpuDevice(i, Marshal.PtrToStringUTF8((IntPtr)name) ?? "", $"{major}.{minor}", (long)bytes));
        }
        return new GpuInfo(driver, cudaVersion, devices, null);
    }

    /// <summary>The version in <c>/proc/driver/nvidia/version</c>: "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  …".</summary>
    internal static string? ParseKernelModuleVersion(string text)
    {
        var match = System.Text.RegularExpressions.Regex.Match(text, @"Kernel Module(?:\s+for\s+\S+)?\s+(\d+(?:\.\d+)+)");
        return match.Success ? match.Groups[1].Value : null;
    }

    /// <summary>cuDriverGetVersion's 1000 × major + 10 × minor, as "12.8".</summary>
    internal static string FormatCudaVersion(int version) =>
        string.Create(CultureInfo.InvariantCulture, $"{version / 1000}.{version % 1000 / 10}");

    private static string? NvmlDriverVersion(string library)
    {
        if (!NativeLibrary.TryLoad(library, out IntPtr nvml))
            return null;
        var init = (delegate* unmanaged<int>)Export(nvml, "nvmlInit_v2");
        var getVersion = (delegate* unmanaged<byte*, uint, int>)Export(nvml, "nvmlSystemGetDriverVersion");
        if (init == null || getVersion == null || init() != 0)
            return null;
        byte* buffer = stackalloc byte[96];
        return getVersion(buffer, 96) == 0 ? Encoding.UTF8.GetString(buffer, new ReadOnlySpan<byte>(buffer, 96).IndexOf((byte)0) is var n and >= 0 ? n : 96) : null;
    }

    private static void* Export(IntPtr library, string name) =>
        NativeLibrary.TryGetExport(library, name, out IntPtr address) ? (void*)address : null;
}
