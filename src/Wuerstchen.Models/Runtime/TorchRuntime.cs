using System.Reflection;
using TorchSharp;
using Wuerstchen.Models.Pipelines;

namespace Wuerstchen.Models.Runtime;

/// <summary>
/// Which LibTorch this build runs on, and the process-wide switches that go with a device. The build chooses the
/// backend with <c>-p:TorchBackend=cpu|cuda|external</c>: <c>cpu</c> and <c>cuda</c> ship LibTorch's natives in the
/// output; <c>external</c> ships TorchSharp's bindings only and loads LibTorch from a PyTorch installation at start-up
/// (<see cref="ExternalLibTorch"/>).
/// </summary>
public static class TorchRuntime
{
    private static readonly object Gate = new();
    private static ExternalLibTorch.Installation? s_external;

    /// <summary><c>cpu</c>, <c>cuda</c> or <c>external</c>: the <c>TorchBackend</c> this assembly was built with.</summary>
    public static string Backend { get; } =
        typeof(TorchRuntime).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "TorchBackend")?.Value ?? "cpu";

    /// <summary>The LibTorch the external backend loaded, or null (other backends, or not loaded yet).</summary>
    public static ExternalLibTorch.Installation? External => s_external;

    /// <summary>
    /// Makes LibTorch loadable before the first TorchSharp call: with the external backend it finds a LibTorch
    /// (<see cref="ExternalLibTorch.Locate"/>) and loads it, or throws <see cref="LibTorchNotFoundException"/> naming what is
    /// missing and where it looked; with the others it does nothing. Call it first thing in every entry point.
    /// </summary>
    public static void EnsureNativesLoaded()
    {
        if (Backend != "external")
            return;
        lock (Gate)
        {
            s_external ??= ExternalLibTorch.Load(ExternalLibTorch.Locate());
        }
    }

    /// <summary>One line for logs and reports: the backend and, for the external one, which LibTorch from where.</summary>
    public static string Describe() => s_external is { } found
        ? $"external LibTorch {found.Version ?? "(version unknown)"} from {found.Directory} ({found.Source})"
        : $"{Backend} (LibTorch {torch.__version__} natives in the build output)";

    /// <summary>
    /// Sets the math switches a run's precision implies, explicitly rather than by LibTorch's defaults. In float32 on a
    /// GPU, matrix products and convolutions stay float32 (TF32 off, unless <paramref name="allowTf32"/>): TF32 keeps only
    /// 10 mantissa bits, far outside the parity tolerances. The switches are process-wide; a process runs one precision.
    /// </summary>
    public static void ConfigureMath(InferenceOptions options, bool allowTf32 = false)
    {
        if (options.Device.type != DeviceType.CUDA)
            return;
        bool tf32 = allowTf32 && options.DType == torch.ScalarType.Float32;
        torch.backends.cuda.matmul.allow_tf32 = tf32;
        torch.backends.cudnn.allow_tf32 = tf32;
    }
}
