using Wuerstchen.Models.Loading;
using Wuerstchen.Models.Pipelines;
using Wuerstchen.Models.Schedulers;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Tests.Pipelines;

public sealed class WuerstchenPriorPipelineTests
{
    public static TheoryData<string> Cases() => new(PipelineCase.Names("pipeline_"));

    private static WuerstchenPriorPipeline LoadPipeline() =>
        WuerstchenPriorPipeline.FromRepository(ModelRepository.Open(ParityFixtures.PathOf("models/prior-pipeline")));

    private static PriorGenerationSettings SettingsOf(PipelineCase fixture) => new()
    {
        Prompts = fixture.Prompts,
        NegativePrompts = fixture.NegativePrompts,
        Height = fixture.Height,
        Width = fixture.Width,
        ImagesPerPrompt = fixture.ImagesPerPrompt,
        GuidanceScale = fixture.PriorGuidance,
        Timesteps = fixture.PriorTimesteps,
        Steps = fixture.PriorSteps,
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void WithTheRecordedNoiseEveryStepMatchesTheReference(string caseName)
    {
        using var scope = NewDisposeScope();
        using var fixture = PipelineCase.Open(caseName);
        using var pipeline = LoadPipeline();
        var noise = fixture.RecordedNoise("prior");
        int recordedSteps = fixture.Count("prior.latents.");

        var embeddings = pipeline.Generate(SettingsOf(fixture), noise, step =>
        {
            if (step.Step - 1 < recordedSteps)
                Parity.AssertClose(step.Latents, fixture.Load($"prior.latents.{step.Step - 1}"), Parity.PipelineTolerance, $"{caseName} prior latents after step {step.Step}");
        }, TestContext.Current.CancellationToken);

        Assert.Equal(noise.Count, noise.Served);
        Parity.AssertClose(embeddings, fixture.Load("image_embeddings"), Parity.PipelineTolerance, $"{caseName} image_embeddings");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TheSeedReproducesTheReferencesDrawsExactly(string caseName)
    {
        using var scope = NewDisposeScope();
        using var fixture = PipelineCase.Open(caseName);
        using var pipeline = LoadPipeline();
        using var seeded = new SeededNoise(fixture.Seed);
        var capture = new CapturingNoise(seeded);

        var embeddings = pipeline.Generate(SettingsOf(fixture), capture, cancellationToken: TestContext.Current.CancellationToken);

        int recorded = fixture.Count("prior.noise.");
        Assert.Equal(recorded, capture.Draws.Count);
        for (int i = 0; i < recorded; i++)
            Parity.AssertEqual(capture.Draws[i], fixture.Load($"prior.noise.{i}"), $"{caseName} prior draw {i}");
        Parity.AssertClose(embeddings, fixture.Load("image_embeddings"), Parity.PipelineTolerance, $"{caseName} image_embeddings");
    }
}
