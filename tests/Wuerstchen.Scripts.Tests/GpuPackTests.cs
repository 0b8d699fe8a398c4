using System.Text.Json;
using Wuerstchen.Models.Tests;

namespace Wuerstchen.Scripts.Tests;

/// <summary>Runs <c>scripts/gpu-benchmark.sh pack</c> once for the tests of <see cref="GpuPackTests"/>.</summary>
public sealed class GpuPackFixture : IAsyncLifetime
{
    private readonly TempDirectory _directory = new();

    public string Pack => Path.Combine(_directory.Path, "pack");

    /// <summary>The pack's application (benchmark and CUDA tests), unpacked.</summary>
    public string App => Path.Combine(_directory.Path, "unpacked", "app");

    public ProcessResult Result { get; private set; } = null!;

    /// <summary>The pack's size as written (the run step later unpacks into a work folder inside it).</summary>
    public long Bytes { get; private set; }

    public string Scratch(string name) => Path.Combine(_directory.Path, name);

    public async ValueTask InitializeAsync()
    {
        ParityFixtures.PathOf("models/prior-pipeline"); // the pack carries the fixtures: fail (CI) or skip without them
        Result = await Processes.RunAsync("bash", ["scripts/gpu-benchmark.sh", "pack", "--output", Pack], null, TimeSpan.FromMinutes(20), default);
        if (Result.ExitCode == 0)
        {
            Bytes = new DirectoryInfo(Pack).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);
            Directory.CreateDirectory(Path.Combine(_directory.Path, "unpacked"));
            bool xz = File.Exists(Path.Combine(Pack, "wuerstchen.tar.xz"));
            await Processes.RunAsync("tar", [xz ? "-xJf" : "-xzf", Path.Combine(Pack, xz ? "wuerstchen.tar.xz" : "wuerstchen.tar.gz"), "-C", Path.Combine(_directory.Path, "unpacked")], null,
                TimeSpan.FromMinutes(2), default);
        }
    }

    public ValueTask DisposeAsync()
    {
        _directory.Dispose();
        return ValueTask.CompletedTask;
    }
}

public sealed class GpuPackTests(GpuPackFixture pack) : IClassFixture<GpuPackFixture>
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private string Benchmark => Path.Combine(pack.App, "Wuerstchen.Benchmarks.dll");

    [Fact]
    public void PackWritesOneFolderUnder64MbWithTheExternalBackendAndNoLibTorch()
    {
        Assert.True(pack.Result.ExitCode == 0, pack.Result.ToString());
        Assert.True(pack.Bytes is > 0 and < 64_000_000, $"the pack holds {pack.Bytes} bytes");
        foreach (string file in new[] { "gpu-benchmark.sh", "pack.json", "diffusers/bench.py", "diffusers/diffusers-src.tar.gz" })
            Assert.True(File.Exists(Path.Combine(pack.Pack, file)), $"the pack has no {file}");
        Assert.True(File.Exists(Path.Combine(pack.Pack, "wuerstchen.tar.xz")) || File.Exists(Path.Combine(pack.Pack, "wuerstchen.tar.gz")), "the pack has no application");
        Assert.True(File.Exists(Path.Combine(pack.Pack, "dotnet-runtime.tar.xz")) || File.Exists(Path.Combine(pack.Pack, "dotnet-runtime.tar.gz")), "the pack has no .NET runtime");

        var files = Directory.EnumerateFiles(pack.App, "*", SearchOption.AllDirectories).Select(Path.GetFileName).ToHashSet();
        Assert.Contains("Wuerstchen.Benchmarks.dll", files);
        Assert.Contains("Wuerstchen.Cuda.Tests.dll", files);
        Assert.Contains("libLibTorchSharp.so", files);
        Assert.DoesNotContain(files, f => f!.StartsWith("libtorch", StringComparison.Ordinal) || f.StartsWith("libc10", StringComparison.Ordinal));
        Assert.True(File.Exists(Path.Combine(Path.GetDirectoryName(pack.App)!, "fixtures", "models", "decoder-pipeline", "model_index.json")));
    }

    [Fact]
    public async Task TheExternalBackendRunsATensorOpOnLibTorchTakenFromAFolder()
    {
        string natives = Processes.NuGetLibTorchNatives;
        var result = await Processes.RunAsync("dotnet", [Benchmark, "--self-check"],
            new Dictionary<string, string?> { ["WUERSTCHEN_LIBTORCH"] = natives }, TimeSpan.FromMinutes(3), Token);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("= [3, 3, 12, 12]", result.Output);
        Assert.Contains($"external LibTorch", result.Output);
        Assert.Contains($"loaded: {Path.Combine(natives, "libtorch_cpu.so")}", result.Output);
        Assert.False(Directory.Exists(Path.Combine(pack.App, "cpu")), "TorchSharp fell back to copying natives from the NuGet cache");
    }

    [Fact]
    public async Task WithoutLibTorchTheErrorNamesWhatIsMissingAndWhereItLooked()
    {
        string missing = pack.Scratch("no-such-libtorch");
        var configured = await Processes.RunAsync("dotnet", [Benchmark, "--self-check"],
            new Dictionary<string, string?> { ["WUERSTCHEN_LIBTORCH"] = missing }, TimeSpan.FromMinutes(2), Token);
        Assert.Equal(3, configured.ExitCode);
        Assert.Contains("needs LibTorch 2.10 (libtorch.so and libtorch_cpu.so", configured.Error);
        Assert.Contains($"WUERSTCHEN_LIBTORCH={missing}: no such folder", configured.Error);
        Assert.DoesNotContain("   at ", configured.Error); // one clear line, no stack trace

        var python = await Processes.RunAsync("dotnet", [Benchmark, "--self-check"],
            new Dictionary<string, string?> { ["WUERSTCHEN_PYTHON"] = missing + "/python3" }, TimeSpan.FromMinutes(2), Token);
        Assert.Equal(3, python.ExitCode);
        Assert.Contains("WUERSTCHEN_LIBTORCH: not set", python.Error);
        Assert.Contains($"{missing}/python3 -c \"import torch\": cannot run", python.Error);
    }

    [Fact]
    public async Task TheRunStepWorksEndToEndInDryModeOnTheCpu()
    {
        string results = pack.Scratch("results");
        var result = await Processes.RunAsync("bash", [Path.Combine(pack.Pack, "gpu-benchmark.sh"), "run", "--dry-run", "--batches", "1,2", "--output", results],
            new Dictionary<string, string?> { ["WUERSTCHEN_LIBTORCH"] = Processes.NuGetLibTorchNatives }, TimeSpan.FromMinutes(30), Token);

        string checks = Path.Combine(results, "checks.log");
        Assert.True(result.ExitCode == 0, result + (File.Exists(checks) ? "\n--- checks.log\n" + File.ReadAllText(checks) : ""));
        string summary = File.ReadAllText(Path.Combine(results, "summary.md"));
        Assert.Contains("Correctness checks on cpu: passed.", summary);
        Assert.Contains("| batch | Stage C s | Stage B s | Stage A s | PNG s |", summary);
        Assert.True(File.Exists(Path.Combine(results, "checks.xml")));
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(results, "wuerstchen.json")));
        var rows = json.RootElement.GetProperty("results").EnumerateArray().ToArray();
        Assert.Equal([1, 2], rows.Select(r => r.GetProperty("batch").GetInt32()));
        foreach (var row in rows)
        {
            foreach (string field in new[] { "perImageSeconds", "perImageWithPngSeconds", "stageCSeconds", "stageBSeconds", "stageASeconds", "pngSeconds" })
                Assert.True(row.GetProperty(field).GetDouble() > 0, $"batch {row.GetProperty("batch")}: {field}");
        }

        // The batching step: concurrent single requests (the largest of --batches), batching on and off, and one request of as many images.
        Assert.Contains("Batching under load:", summary);
        using var load = JsonDocument.Parse(File.ReadAllText(Path.Combine(results, "load.json")));
        Assert.Equal(2, load.RootElement.GetProperty("concurrent").GetInt32());
        foreach (string part in new[] { "batchingOn", "batchingOff", "oneRequest" })
        {
            foreach (string field in new[] { "imagesPerSecond", "p50Seconds", "p95Seconds", "meanBatch" })
                Assert.True(load.RootElement.GetProperty(part).GetProperty(field).GetDouble() > 0, $"load.json {part}.{field}");
        }
        Assert.Equal(1.0, load.RootElement.GetProperty("batchingOff").GetProperty("meanBatch").GetDouble());
    }
}
