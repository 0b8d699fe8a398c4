using TorchSharp;
using Wuerstchen.Models.Loading;
using Wuerstchen.Models.Pipelines;
using Wuerstchen.Models.Runtime;
using Wuerstchen.Models.Schedulers;
using Wuerstchen.Models.Tests;
using static TorchSharp.torch;

namespace Wuerstchen.Cuda.Tests;

[Trait("Category", "Cuda")]
[Collection(DeviceCollection.Name)]
public sealed class DeviceMemoryTests
{
    /// <summary>
    /// Growth allowed from step 5 to step 20 of a run: on a GPU, of device memory (LibTorch's caching allocator reaches
    /// its steady state in the first steps); on a CPU, of resident memory, as NativeMemoryTests allows.
    /// </summary>
    public const long FlatGrowthBytes = 16L << 20, FlatResidentGrowthBytes = 32L << 20;

    private static WuerstchenPriorPipeline LoadPrior(InferenceOptions options) =>
        WuerstchenPriorPipeline.FromRepository(ModelRepository.Open(ParityFixtures.PathOf("models/prior-pipeline")), options);

    [Fact]
    public void ATwentyStepRunKeepsDeviceMemoryAndLiveTensorsFlat()
    {
        var options = TestDevice.Options(ScalarType.Float32);
        using var pipeline = LoadPrior(options);
        using var gpu = options.Device.type == DeviceType.CUDA ? GpuMemory.TryOpen() : null;
        Func<long> used = gpu is not null ? () => (long)gpu.UsedBytes() : ResidentBytes;
        if (options.Device.type == DeviceType.CUDA)
            Assert.NotNull(gpu); // NVML comes with the NVIDIA driver; without it there is no memory figure to check
        var settings = new PriorGenerationSettings { Prompts = ["a memory test", "another"], ImagesPerPrompt = 2, Width = 512, Height = 512, Steps = 20, GuidanceScale = 4 };

        for (int run = 0; run < 2; run++)
        {
            var liveTensors = new long[21];
            var memory = new long[21];
            using var scope = NewDisposeScope();
            using var noise = new ItemwiseNoise([1, 2], 2);
            pipeline.Generate(settings, noise, step =>
            {
                TestDevice.Synchronize(options.Device);
                liveTensors[step.Step] = DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount;
                memory[step.Step] = used();
            }, TestContext.Current.CancellationToken);

            Assert.Equal(liveTensors[5], liveTensors[20]);
            long growth = memory[20] - memory[5];
            Assert.True(growth < (gpu is null ? FlatResidentGrowthBytes : FlatGrowthBytes), $"run {run + 1}: {(gpu is null ? "resident" : "device")} memory grew by {growth >> 20} MiB from step 5 to step 20");
        }
    }

    /// <summary>
    /// An absurd batch (its Stage C noise alone needs four times the device's memory) fails as a
    /// <see cref="StageOutOfMemoryException"/> naming the stage, the size and the batch, raised once by the pipeline (a
    /// caller's retry policy can see it is permanent), and the pipeline serves the next request as if nothing happened.
    /// On the CPU the batch is sized past any address space instead (2⁴⁸ bytes), which every overcommit policy refuses.
    /// </summary>
    [Fact]
    public void AnAbsurdBatchFailsOnceAsAStageOutOfMemoryErrorNamingStageSizeAndBatch()
    {
        var options = TestDevice.Options(ScalarType.Float32);
        using var pipeline = LoadPrior(options);
        bool onGpu = options.Device.type == DeviceType.CUDA;
        int size = onGpu ? 1024 : 262_144;
        const int Steps = 29;
        var (h, w) = pipeline.LatentSize(size, size);
        double noiseBytesPerImage = (Steps + 1.0) * pipeline.Prior.Config.CIn * h * w * sizeof(float);
        double target = onGpu ? 4.0 * DeviceBytes() : Math.Pow(2, 48);
        int images = (int)Math.Min(int.MaxValue, Math.Ceiling(target / noiseBytesPerImage));
        var settings = new PriorGenerationSettings { Prompts = ["an absurd batch"], Width = size, Height = size, ImagesPerPrompt = images, Steps = Steps };

        int calls = 0;
        var error = Assert.Throws<StageOutOfMemoryException>(() =>
        {
            calls++;
            using var scope = NewDisposeScope();
            using var noise = new SeededNoise(1);
            pipeline.Generate(settings, noise, cancellationToken: TestContext.Current.CancellationToken);
        });

        Assert.Equal(1, calls);
        Assert.Equal(("Stage C", size, size, (long)images), (error.Stage, error.Width, error.Height, error.Batch));
        Assert.Equal(options.Device.ToString(), error.Device);
        Assert.Contains($"Stage C ran out of memory on {options.Device} at {size}×{size} px with a batch of {images} images", error.Message);
        if (onGpu)
            Assert.Contains("out of memory", error.InnerException!.Message, StringComparison.OrdinalIgnoreCase);

        using (var scope = NewDisposeScope())
        {
            using var noise = new SeededNoise(2);
            var embeddings = pipeline.Generate(settings with { ImagesPerPrompt = 2, Width = 256, Height = 256, Steps = 2 }, noise,
                cancellationToken: TestContext.Current.CancellationToken);
            Assert.Equal(2, embeddings.shape[0]);
            Assert.True(embeddings.isfinite().all().item<bool>());
        }
    }

    private static double DeviceBytes()
    {
        using var gpu = GpuMemory.TryOpen() ?? throw new InvalidOperationException("NVML (libnvidia-ml.so.1) is not available to size the absurd batch.");
        return gpu.TotalBytes;
    }

    private static long ResidentBytes()
    {
        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        throw new InvalidOperationException("No VmRSS in /proc/self/status.");
    }
}
