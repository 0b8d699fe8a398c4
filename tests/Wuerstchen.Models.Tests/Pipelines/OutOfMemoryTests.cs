using Wuerstchen.Models.Loading;
using Wuerstchen.Models.Pipelines;
using Wuerstchen.Models.Schedulers;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Tests.Pipelines;

public sealed class OutOfMemoryTests
{
    /// <summary>
    /// A request whose up-front noise alone needs 2⁴⁸ bytes (256 TiB, beyond any machine's address space, so it is
    /// refused at once whatever the kernel's overcommit policy) fails as a <see cref="StageOutOfMemoryException"/> that
    /// names the stage, the size and the batch, and leaves the pipeline usable.
    /// </summary>
    [Fact]
    public void AnAllocationBeyondTheMachineIsAStageErrorNamingStageSizeAndBatch()
    {
        using var scope = NewDisposeScope();
        using var pipeline = WuerstchenPriorPipeline.FromRepository(ModelRepository.Open(ParityFixtures.PathOf("models/prior-pipeline")));
        const int Size = 262_144;
        const int Steps = 60;
        var (h, w) = pipeline.LatentSize(Size, Size);
        double bytesPerImage = (Steps + 1.0) * pipeline.Prior.Config.CIn * h * w * sizeof(float);
        int images = (int)Math.Ceiling(Math.Pow(2, 48) / bytesPerImage);
        using var noise = new SeededNoise(1);
        var settings = new PriorGenerationSettings { Prompts = ["too much"], Width = Size, Height = Size, ImagesPerPrompt = images, Steps = Steps };

        var error = Assert.Throws<StageOutOfMemoryException>(() => pipeline.Generate(settings, noise, cancellationToken: TestContext.Current.CancellationToken));

        Assert.Equal(("Stage C", Size, Size, (long)images, "cpu"), (error.Stage, error.Width, error.Height, error.Batch, error.Device));
        Assert.Contains($"Stage C ran out of memory on cpu at {Size}×{Size} px with a batch of {images} images", error.Message);
        Assert.DoesNotContain("\n", error.Message);
        Assert.True(StageOutOfMemoryException.IsOutOfMemory(error.InnerException!), error.InnerException!.Message);

        var images2 = pipeline.Generate(settings with { ImagesPerPrompt = 1, Width = 128, Height = 128, Steps = 2 }, noise,
            cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(1, images2.shape[0]);
    }

    [Theory]
    [InlineData("CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of 79.19 GiB", true)]
    [InlineData("CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported", true)]
    [InlineData("DefaultCPUAllocator: not enough memory: you tried to allocate 281474976710656 bytes.", true)]
    [InlineData("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1024 bytes. Error code 12", true)]
    [InlineData("The size of tensor a (4) must match the size of tensor b (5) at non-singleton dimension 1", false)]
    public void LibTorchsAllocationFailuresAreRecognisedAndOtherErrorsAreNot(string message, bool outOfMemory)
    {
        Assert.Equal(outOfMemory, StageOutOfMemoryException.IsOutOfMemory(new System.Runtime.InteropServices.ExternalException(message)));
        Assert.True(StageOutOfMemoryException.IsOutOfMemory(new InvalidOperationException("wrapped", new OutOfMemoryException())));
    }
}
