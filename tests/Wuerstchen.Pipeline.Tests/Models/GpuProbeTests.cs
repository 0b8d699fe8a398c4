using Wuerstchen.Models.Tests;
using Wuerstchen.Pipeline.Models;

namespace Wuerstchen.Pipeline.Tests.Models;

/// <summary>What the health report says about the NVIDIA driver, read without LibTorch.</summary>
public sealed class GpuProbeTests
{
    [Fact]
    public void WithoutTheDriverLibrariesTheProbeSaysSoInsteadOfThrowing()
    {
        using var temp = new TempDirectory();

        var info = GpuProbe.Read(temp.File("no-proc-version"), "libcuda-absent-for-test.so.1", "libnvidia-ml-absent-for-test.so.1");

        Assert.Null(info.DriverVersion);
        Assert.Null(info.CudaDriverVersion);
        Assert.Empty(info.Devices);
        Assert.Null(info.ComputeCapability);
        Assert.Contains("libcuda-absent-for-test.so.1", info.Problem);
        Assert.Contains("no NVIDIA driver", info.Problem);
    }

    [Fact]
    public void TheKernelDriverVersionIsReadFromProcDriverNvidia()
    {
        using var temp = new TempDirectory();
        File.WriteAllText(temp.File("version"),
            "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n");

        var info = GpuProbe.Read(temp.File("version"), "libcuda-absent-for-test.so.1", "libnvidia-ml-absent-for-test.so.1");

        Assert.Equal("550.54.15", info.DriverVersion);
        Assert.Equal("570.86.10", GpuProbe.ParseKernelModuleVersion("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.86.10  Release Build"));
        Assert.Null(GpuProbe.ParseKernelModuleVersion("something else"));
    }

    [Theory]
    [InlineData(12080, "12.8")]
    [InlineData(12040, "12.4")]
    [InlineData(11080, "11.8")]
    public void TheCudaDriverApiVersionReadsAsMajorDotMinor(int encoded, string expected) =>
        Assert.Equal(expected, GpuProbe.FormatCudaVersion(encoded));

    [Fact]
    public void ComputeCapabilityIsTheFirstDevices()
    {
        var info = new GpuInfo("550.54.15", "12.4", [new GpuDevice(0, "Tesla T4", "7.5", 16L << 30)], null);
        Assert.Equal(7.5, info.ComputeCapability);
    }
}
