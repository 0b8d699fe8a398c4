using System.Reflection;
using TorchSharp;

namespace Wuerstchen.Cli;

/// <summary>Checks the device a command is to run on before any work starts.</summary>
public static class DeviceCheck
{
    /// <summary>The LibTorch backend this build carries: <c>cpu</c> (TorchSharp + libtorch-cpu) or <c>cuda</c> (TorchSharp-cuda-linux).</summary>
    public static string Backend { get; } =
        typeof(DeviceCheck).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "TorchBackend")?.Value ?? "cpu";

    /// <param name="device">The configured device.</param>
    /// <param name="source">Where it was set, for the message (<c>--device</c> or the setting).</param>
    public static void Ensure(string device, string source)
    {
        if (device != "cuda")
            return;
        if (Backend != "cuda")
            throw new CliUsageException(
                $"{source} cuda: this build of wuerstchen carries LibTorch's CPU backend (TorchSharp with libtorch-cpu); " +
                "use --device cpu, or build with -p:TorchBackend=cuda (TorchSharp-cuda-linux) on a machine with an NVIDIA driver.");
        try
        {
            torch.InitializeDeviceType(DeviceType.CUDA);
        }
        catch (Exception e) when (e is NotSupportedException or InvalidOperationException or DllNotFoundException or TypeInitializationException)
        {
            string reason = e.Message.Split('\n', 2)[0].Trim();
            throw new CliUsageException($"{source} cuda: LibTorch's CUDA backend does not load on this machine ({reason}); check the NVIDIA driver, or use --device cpu.");
        }
        if (!torch.cuda.is_available())
            throw new CliUsageException($"{source} cuda: LibTorch finds no CUDA device on this machine; check the GPU and its driver, or use --device cpu.");
    }
}
