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

        var images = pipeline.Decoder.Decode(latents);
        Parity.AssertClose(images.permute(0, 2, 3, 1), fixture.Load("images"), ImageTolerance, $"{caseName} images");
        var levels = (PngImages.ToBytes(images).to(int32) - fixture.Load("images_uint8").to(int32)).abs().max().item<int>();
        Assert.True(levels <= 1, $"{caseName}: 8-bit images differ by {levels} levels");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void OneSeedReproducesEveryDrawOfBothStagesAndTheImages(string caseName)
    {
        using var scope = NewDisposeScope();
        using var fixture = PipelineCase.Open(caseName);
        using var pipeline = LoadPipeline();
        using var seeded = new SeededNoise(fixture.Seed);
        var capture = new CapturingNoise(seeded);

        var images = pipeline.Generate(SettingsOf(fixture), capture, cancellationToken: TestContext.Current.CancellationToken);

        var expected = Enumerable.Range(0, fixture.Count("prior.noise.")).Select(i => $"prior.noise.{i}")
            .Concat(Enumerable.Range(0, fixture.Count("decoder.noise.")).Select(i => $"decoder.noise.{i}")).ToList();
        Assert.Equal(expected.Count, capture.Draws.Count);
        for (int i = 0; i < expected.Count; i++)
            Parity.AssertEqual(capture.Draws[i], fixture.Load(expected[i]), $"{caseName} {expected[i]}");
        Parity.AssertClose(images.permute(0, 2, 3, 1), fixture.Load("images"), ImageTolerance, $"{caseName} images");
    }

    [Fact]
    public void DifferentPromptsInOneBatchKeepTheirOwnTextInStageB()
    {
        using var scope = NewDisposeScope();
        using var pipeline = LoadPipeline();
        var token = TestContext.Current.CancellationToken;
        var repository = ModelRepository.Open(ParityFixtures.PathOf("models/prior-pipeline"));
        var (h, w) = pipeline.Prior.LatentSize(128, 256);
        using var seeded = new SeededNoise(5);
        var embeddings = seeded.Randn([2, pipeline.Prior.Prior.Config.CIn, h, w]);

        DecoderGenerationSettings Settings(params string[] prompts) => new() { Prompts = prompts, Steps = 2 };
        Tensor Decode(DecoderGenerationSettings settings, Tensor e)
        {
            using var noise = new SeededNoise(9);
            return pipeline.Decoder.Generate(e, settings, noise, cancellationToken: token);
        }

        var batched = Decode(Settings("a red dragon", "a blue whale"), embeddings);
        var first = Decode(Settings("a red dragon"), embeddings[..1]);
        // Image 0 of the batch must equal the lone run of its prompt on its own embedding (same noise for row 0).
        Parity.AssertClose(batched[..1], first, 1e-5, "row 0 of a two-prompt batch");
        var swapped = Decode(Settings("a blue whale", "a red dragon"), embeddings);
        Assert.False(batched[0].allclose(swapped[0], 1e-5, 1e-5), "the prompt of row 0 had no effect");
        _ = repository;
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
}
