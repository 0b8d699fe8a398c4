using System.Runtime.CompilerServices;
using TorchSharp;
using Wuerstchen.Models.Pipelines;
using Wuerstchen.Models.Runtime;
using static TorchSharp.torch;

namespace Wuerstchen.Cuda.Tests;

/// <summary>
/// The device these tests run on: CUDA unless <c>WUERSTCHEN_TEST_DEVICE=cpu</c> (the same checks on the CPU, to try them
/// where there is no GPU). Without a CUDA device the tests fail, saying so: they are filtered out of the default run by
/// their trait, never skipped.
/// </summary>
public static class TestDevice
{
    public const string Variable = "WUERSTCHEN_TEST_DEVICE";

    /// <summary>The external LibTorch backend (the GPU pack's build) must find LibTorch before the first TorchSharp call.</summary>
    [ModuleInitializer]
    internal static void LoadLibTorch() => TorchRuntime.EnsureNativesLoaded();

    public static Device Get()
    {
        string name = Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } configured ? configured : "cuda";
        if (name == "cpu")
            return CPU;
        if (name != "cuda")
            throw new InvalidOperationException($"{Variable} is '{name}'; use cuda (default) or cpu.");
        InitializeDeviceType(DeviceType.CUDA);
        if (!cuda.is_available())
        {
            throw new InvalidOperationException(
                $"These tests need a CUDA device and LibTorch sees none ({TorchRuntime.Describe()}). Run them on a GPU machine " +
                $"(scripts/gpu-benchmark.sh run), or set {Variable}=cpu to run the same checks on the CPU.");
        }
        return CUDA;
    }

    public static InferenceOptions Options(ScalarType dtype)
    {
        var options = new InferenceOptions { Device = Get(), DType = dtype };
        TorchRuntime.ConfigureMath(options);
        return options;
    }

    public static void Synchronize(Device device)
    {
        if (device.type == DeviceType.CUDA)
            cuda.synchronize(device);
    }
}

/// <summary>One test at a time on the device: memory figures must not see another test's allocations.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class DeviceCollection
{
    public const string Name = "device";
}
