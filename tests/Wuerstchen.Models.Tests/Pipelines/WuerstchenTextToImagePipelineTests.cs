using Wuerstchen.Models.Imaging;
using Wuerstchen.Models.Loading;
using Wuerstchen.Models.Pipelines;
using Wuerstchen.Models.Schedulers;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Tests.Pipelines;

public sealed class WuerstchenTextToImagePipelineTests
{
    private const double ImageTolerance = 2e-3;

    public static TheoryData<string> Cases()
    {
        var cases = new TheoryData<string>();
        foreach (string name in PipelineCase.Names("pipeline_"))
        {
            using var fixture = PipelineCase.Open(name);
            if (fixture.HasDecoder)
                cases.Add(name);
        }
        return cases;
    }

    private static WuerstchenTextToImagePipeline LoadPipeline() => new(
        WuerstchenPriorPipeline.FromRepository(ModelRepository.Open(ParityFixtures.PathOf("models/prior-pipeline"))),
        WuerstchenDecoderPipeline.FromRepository(ModelRepository.Open(ParityFixtures.PathOf("models/decoder-pipeline"))));

    private static TextToImageSettings SettingsOf(PipelineCase fixture) => new()
    {
        Prompts = fixture.Prompts,
        NegativePrompts = fixture.NegativePrompts,
        Width = fixture.Width,
        Height = fixture.Height,
        ImagesPerPrompt = fixture.ImagesPerPrompt,
        PriorGuidanceScale = fixture.PriorGuidance,
        PriorTimesteps = fixture.PriorTimesteps,
        PriorSteps = fixture.PriorSteps,
        DecoderGuidanceScale = fixture.DecoderGuidance,
        DecoderSteps = fixture.DecoderSteps,
        DecoderTimesteps = null,
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void WithTheRecordedNoiseEveryDecoderStepAndTheImagesMatchTheReference(string caseName)
    {
        using var scope = NewDisposeScope();
        using var fixture = PipelineCase.Open(caseName);
        using var pipeline = LoadPipeline();
        var settings = SettingsOf(fixture);
        var token = TestContext.Current.CancellationToken;

        var embeddings = pipeline.Prior.Generate(settings.ForPrior(), fixture.RecordedNoise("prior"), cancellationToken: token);
        Parity.AssertClose(embeddings, fixture.Load("image_embeddings"), Parity.PipelineTolerance, $"{caseName} image_embeddings");

        var decoderNoise = fixture.RecordedNoise("decoder");
        var latents = pipeline.Decoder.Generate(embeddings, settings.ForDecoder(), decoderNoise, step =>
            Parity.AssertClose(step.Latents, fixture.Load($"decoder.latents.{step.Step - 1}"), Parity.PipelineTolerance, $"{caseName} decoder latents after step {step.Step}"), token);
        Assert.Equal(decoderNoise.Count, decoderNoise.Served);

        AssertImagesMatch(pipeline.Decoder.Decode(latents), fixture, caseName);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void StageADecodeOfTheReferenceLatentsGivesTheReferenceImages(string caseName)
    {
        using var scope = NewDisposeScope();
        using var fixture = PipelineCase.Open(caseName);
        using var decoder = WuerstchenDecoderPipeline.FromRepository(ModelRepository.Open(ParityFixtures.PathOf("models/decoder-pipeline")));
        var images = decoder.Decode(fixture.Load($"decoder.latents.{fixture.Count("decoder.latents.") - 1}"));
        Parity.AssertClose(images.permute(0, 2, 3, 1), fixture.Load("images"), ImageTolerance, $"{caseName} images");
        var levels = (PngImages.ToBytes(images).to(int32) - fixture.Load("images_uint8").to(int32)).abs().max().item<int>();
        Assert.True(levels <= 1, $"{caseName}: 8-bit images differ by {levels} levels");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void StageAToBytesOnTheDeviceGivesTheBytesOfConvertingOnTheHost(string caseName)
    {
        using var scope = NewDisposeScope();
        using var fixture = PipelineCase.Open(caseName);
        using var decoder = WuerstchenDecoderPipeline.FromRepository(ModelRepository.Open(ParityFixtures.PathOf("models/decoder-pipeline")));
        var latents = fixture.Load($"decoder.latents.{fixture.Count("decoder.latents.") - 1}");
        var bytes = decoder.DecodeToBytes(latents);
        Assert.Equal(ScalarType.Byte, bytes.dtype);
        Assert.Equal(fixture.Load("images_uint8").shape, bytes.shape);
        Parity.AssertEqual(bytes, PngImages.ToBytes(decoder.Decode(latents)), $"{caseName} 8-bit images");
    }

    [Fact]
    public void StageADecodingInChunksGivesTheImagesOfOneDecode()
    {
        using var scope = NewDisposeScope();
        string caseName = PipelineCase.Names("pipeline_").First(name =>
        {
            using var candidate = PipelineCase.Open(name);
            return candidate.HasDecoder;
        });
        using var fixture = PipelineCase.Open(caseName);
        var latents = fixture.Load($"decoder.latents.{fixture.Count("decoder.latents.") - 1}");
        Assert.True(latents.shape[0] > 1, $"{caseName} has a single image; chunking needs two");
        var repository = ModelRepository.Open(ParityFixtures.PathOf("models/decoder-pipeline"));
        using var whole = WuerstchenDecoderPipeline.FromRepository(repository);
        using var chunked = WuerstchenDecoderPipeline.FromRepository(repository, new InferenceOptions { DecodeBatch = 1 });
        Parity.AssertClose(chunked.Decode(latents), whole.Decode(latents), Parity.ModuleTolerance, "images decoded one at a time");
        Assert.Equal(whole.DecodeToBytes(latents).shape, chunked.DecodeToBytes(latents).shape);
    }

    /// <summary>
    /// Images from our own trajectory. With random weights the latents reach 10⁵ and more, so float32 rounding alone
    /// (a few ulp per step, within the trajectory tolerance) moves single pixels of the decoded image by more than
    /// the per-pixel image tolerance; the image as a whole must still agree.
    /// </summary>
    private static void AssertImagesMatch(Tensor images, PipelineCase fixture, string caseName)
    {
        using var scope = NewDisposeScope();
        var difference = (images.permute(0, 2, 3, 1) - fixture.Load("images")).abs();
        double mean = difference.mean().item<float>();
        Assert.True(mean <= ImageTolerance, $"{caseName}: images differ by {mean:E2} on average");
        var levels = (PngImages.ToBytes(images).to(int32) - fixture.Load("images_uint8").to(int32)).abs();
        double within = levels.le(1).to(float32).mean().item<float>();
        Assert.True(within >= 0.999, $"{caseName}: only {within:P3} of 8-bit values are within one level of the reference");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TheSeedReproducesEveryDrawOfBothStagesAndTheImages(string caseName)
    {
        using var scope = NewDisposeScope();
        using var fixture = PipelineCase.Open(caseName);
        using var pipeline = LoadPipeline();
        using var priorSeeded = new SeededNoise(fixture.Seed);
        using var decoderSeeded = new SeededNoise(WuerstchenTextToImagePipeline.DecoderSeedFor(fixture.Seed));
        var priorCapture = new CapturingNoise(priorSeeded);
        var decoderCapture = new CapturingNoise(decoderSeeded);

        var images = pipeline.Generate(SettingsOf(fixture), priorCapture, decoderCapture, cancellationToken: TestContext.Current.CancellationToken);

        foreach (var (stage, capture) in new[] { ("prior", priorCapture), ("decoder", decoderCapture) })
        {
            int recorded = fixture.Count($"{stage}.noise.");
            Assert.Equal(recorded, capture.Draws.Count);
            for (int i = 0; i < recorded; i++)
                Parity.AssertEqual(capture.Draws[i], fixture.Load($"{stage}.noise.{i}"), $"{caseName} {stage}.noise.{i}");
        }
        AssertImagesMatch(images, fixture, caseName);
    }

    [Fact]
    public void DifferentPromptsInOneBatchKeepTheirOwnTextInStageB()
    {
        using var scope = NewDisposeScope();
        using var pipeline = LoadPipeline();
        var token = TestContext.Current.CancellationToken;
        var (h, w) = pipeline.Prior.LatentSize(128, 256);
        using var seeded = new SeededNoise(5);
        var embeddings = seeded.Randn([2, pipeline.Prior.Prior.Config.CIn, h, w]);

        DecoderGenerationSettings Settings(params string[] prompts) => new() { Prompts = prompts, Steps = 2 };
        Tensor Decode(DecoderGenerationSettings settings, Tensor e) =>
            pipeline.Decoder.Generate(e, settings, new RowwiseNoise(), cancellationToken: token);

        var batched = Decode(Settings("a red dragon", "a blue whale"), embeddings);
        var first = Decode(Settings("a red dragon"), embeddings[..1]);
        // Row 0 of the batch must equal the lone run of its prompt on its own embedding.
        Parity.AssertClose(batched[..1], first, Parity.ModuleTolerance, "row 0 of a two-prompt batch");
        var swapped = Decode(Settings("a blue whale", "a red dragon"), embeddings);
        Assert.False(batched[0].allclose(swapped[0], 1e-3, 1e-3), "the prompt of row 0 had no effect");
    }

    [Theory]
    [InlineData(1000, 1024, "width 1000 px is not a multiple of 128; the nearest valid widths are 896 and 1024")]
    [InlineData(1024, 64, "height 64 px is not a multiple of 128; the nearest valid heights are 128")]
    [InlineData(0, 1024, "width must be positive")]
    public void SizesOffTheGridAreRejectedNamingTheNearestValidSizes(int width, int height, string expected)
    {
        var error = Assert.Throws<ArgumentException>(() => ImageSize.Validate(width, height));
        Assert.Contains(expected, error.Message);
    }

    /// <summary>Noise whose every row is the same fixed pattern, so a row does not depend on the batch around it.</summary>
    private sealed class RowwiseNoise : INoiseSource
    {
        public Tensor Randn(long[] shape, ScalarType dtype, Device device)
        {
            using var row = linspace(-1, 1, shape.Skip(1).Aggregate(1L, (a, b) => a * b)).view(shape[1..]);
            return row.expand(shape).to(dtype, device).contiguous();
        }
    }
}
