using Wuerstchen.Models.Imaging;
using Wuerstchen.Models.Loading;
using Wuerstchen.Models.Pipelines;
using Wuerstchen.Models.StageA;
using Wuerstchen.Models.StageB;
using Wuerstchen.Models.StageC;
using Wuerstchen.Models.Tests;
using Wuerstchen.Models.Tests.Pipelines;
using static TorchSharp.torch;

namespace Wuerstchen.Cuda.Tests;

/// <summary>
/// The tiny fixture models on the device in float32 (TF32 off) against the reference's tensors, with the fixture
/// README's CPU tolerances: a float32 GPU run differs from the CPU reference by a few units in the last place per
/// operation (other reduction orders, cuDNN's and SDPA's kernels), the same order as two CPU builds do.
/// </summary>
[Trait("Category", "Cuda")]
[Collection(DeviceCollection.Name)]
public sealed class DeviceParityTests
{
    /// <summary>Images: mean |a − b| over all pixels, and the share of 8-bit values within one level (as the CPU test).</summary>
    public const double ImageMeanTolerance = 2e-3, ImageWithinOneLevel = 0.999;

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

    internal static WuerstchenTextToImagePipeline LoadPipeline(InferenceOptions options) => new(
        WuerstchenPriorPipeline.FromRepository(ModelRepository.Open(ParityFixtures.PathOf("models/prior-pipeline")), options),
        WuerstchenDecoderPipeline.FromRepository(ModelRepository.Open(ParityFixtures.PathOf("models/decoder-pipeline")), options));

    internal static TextToImageSettings SettingsOf(PipelineCase fixture) => new()
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

    [Fact]
    public void EachStageForwardInFloat32MatchesTheReference()
    {
        using var scope = NewDisposeScope();
        var options = TestDevice.Options(ScalarType.Float32);
        var device = options.Device;
        using var inference = inference_mode();
        using (var reference = Parity.OpenCase("prior_forward"))
        {
            using var prior = WuerstchenPrior.FromComponent(ModelRepository.Open(ParityFixtures.PathOf("models/prior-pipeline")).Component("prior"), device: device);
            var output = prior.forward(reference.Load("x").to(device), reference.Load("r").to(device), reference.Load("c").to(device));
            Assert.Equal(device.type, output.device.type);
            Parity.AssertClose(output.cpu(), reference.Load("out"), Parity.ModuleTolerance, $"Stage C forward on {device}");
        }
        using (var reference = Parity.OpenCase("decoder_forward"))
        {
            using var decoder = WuerstchenDiffNeXt.FromComponent(ModelRepository.Open(ParityFixtures.PathOf("models/decoder-pipeline")).Component("decoder"), device: device);
            var output = decoder.forward(reference.Load("x").to(device), reference.Load("r").to(device), reference.Load("effnet").to(device), reference.Load("clip").to(device));
            Parity.AssertClose(output.cpu(), reference.Load("out"), Parity.ModuleTolerance, $"Stage B forward on {device}");
        }
        using (var reference = Parity.OpenCase("vqgan"))
        {
            using var vqgan = PaellaVQModel.FromComponent(ModelRepository.Open(ParityFixtures.PathOf("models/decoder-pipeline")).Component("vqgan"), device: device);
            Parity.AssertClose(vqgan.Decode(reference.Load("latents").to(device)).cpu(), reference.Load("decoded"), Parity.ModuleTolerance, $"Stage A decode on {device}");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void FixturePipelinesInFloat32MatchTheReferenceStepByStep(string caseName)
    {
        using var scope = NewDisposeScope();
        using var fixture = PipelineCase.Open(caseName);
        var options = TestDevice.Options(ScalarType.Float32);
        using var pipeline = LoadPipeline(options);
        var settings = SettingsOf(fixture);
        var token = TestContext.Current.CancellationToken;

        var embeddings = pipeline.Prior.Generate(settings.ForPrior(), fixture.RecordedNoise("prior"), step =>
            Parity.AssertClose(step.Latents.cpu(), fixture.Load($"prior.latents.{step.Step - 1}"), Parity.PipelineTolerance, $"{caseName} prior latents after step {step.Step}"), token);
        Assert.Equal(options.Device.type, embeddings.device.type);
        Parity.AssertClose(embeddings.cpu(), fixture.Load("image_embeddings"), Parity.PipelineTolerance, $"{caseName} image_embeddings");

        var latents = pipeline.Decoder.Generate(embeddings, settings.ForDecoder(), fixture.RecordedNoise("decoder"), step =>
            Parity.AssertClose(step.Latents.cpu(), fixture.Load($"decoder.latents.{step.Step - 1}"), Parity.PipelineTolerance, $"{caseName} decoder latents after step {step.Step}"), token);

        var images = pipeline.Decoder.Decode(latents);
        var difference = (images.permute(0, 2, 3, 1) - fixture.Load("images")).abs();
        double mean = difference.mean().item<float>();
        Assert.True(mean <= ImageMeanTolerance, $"{caseName}: images differ by {mean:E2} on average");
        var bytes = pipeline.Decoder.DecodeToBytes(latents);
        double within = (bytes.to(int32) - fixture.Load("images_uint8").to(int32)).abs().le(1).to(float32).mean().item<float>();
        Assert.True(within >= ImageWithinOneLevel, $"{caseName}: only {within:P3} of 8-bit values are within one level of the reference");
    }
}
