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
/// bfloat16 on the device against float32 on the device. The measure is the relative error of the whole tensor (mean
/// |a − b| over mean |b|), not its worst element: bfloat16 keeps 8 bits of mantissa. The tolerances are about three
/// times what the CPU measured (in brackets): one forward pass of each stage stays within a per cent (0.74–0.94 %);
/// a sampling step is further off, because both models' output heads divide by terms near zero where the random fixture
/// weights put them ((x − a)/(|1 − b| + 1e-5) in Stage C) and guidance multiplies the difference (one step: 6.8–13 %);
/// whole trajectories drift further still, which only the images' bound catches (mean |Δ| 0.043–0.110). A broken
/// bfloat16 path (wrong dtype somewhere, overflow, a skipped cast) is off by 100 % and more.
/// </summary>
[Trait("Category", "Cuda")]
[Collection(DeviceCollection.Name)]
public sealed class ReducedPrecisionTests
{
    /// <summary>One forward pass of each stage: relative error of the whole tensor.</summary>
    public const double ForwardTolerance = 0.03;

    /// <summary>One sampling step of each pipeline (image embeddings, Stage B latents): relative error of the whole tensor.</summary>
    public const double StepTolerance = 0.4;

    /// <summary>The fixture pipelines' whole trajectories: images in [0, 1], mean |a − b| over all pixels.</summary>
    public const double TrajectoryImageTolerance = 0.3;

    public static TheoryData<string> Cases() => DeviceParityTests.Cases();

    [Fact]
    public void EachStageForwardInBfloat16StaysCloseToFloat32()
    {
        using var scope = NewDisposeScope();
        var device = TestDevice.Get();
        using var inference = inference_mode();
        var errors = new List<string>();
        double worst = 0;
        void Record(string what, Tensor reduced, Tensor full)
        {
            double error = RelativeError(reduced, full);
            worst = Math.Max(worst, error);
            errors.Add($"{what} {error:E2}");
        }

        using (var reference = Parity.OpenCase("prior_forward"))
        {
            var component = ModelRepository.Open(ParityFixtures.PathOf("models/prior-pipeline")).Component("prior");
            Tensor Head(ScalarType dtype)
            {
                using var prior = WuerstchenPrior.FromComponent(component, dtype, device: device);
                Tensor? head = null;
                // Judged before the output head: (x − a)/(|1 − b| + 1e-5) magnifies rounding wherever b is near 1.
                prior.Forward(reference.Load("x").to(dtype, device), reference.Load("r").to(device), reference.Load("c").to(dtype, device),
                    (name, value) => head = name == "out" ? value.to(float32).cpu().DetachFromDisposeScope() : head);
                return head!;
            }
            Record("Stage C", Head(ScalarType.BFloat16), Head(ScalarType.Float32));
        }
        using (var reference = Parity.OpenCase("decoder_forward"))
        {
            var component = ModelRepository.Open(ParityFixtures.PathOf("models/decoder-pipeline")).Component("decoder");
            Tensor Out(ScalarType dtype)
            {
                using var decoder = WuerstchenDiffNeXt.FromComponent(component, dtype, device: device);
                return decoder.forward(reference.Load("x").to(dtype, device), reference.Load("r").to(device), reference.Load("effnet").to(dtype, device),
                    reference.Load("clip").to(dtype, device)).to(float32).cpu();
            }
            Record("Stage B", Out(ScalarType.BFloat16), Out(ScalarType.Float32));
        }
        using (var reference = Parity.OpenCase("vqgan"))
        {
            var component = ModelRepository.Open(ParityFixtures.PathOf("models/decoder-pipeline")).Component("vqgan");
            Tensor Decoded(ScalarType dtype)
            {
                using var vqgan = PaellaVQModel.FromComponent(component, dtype, device: device);
                return vqgan.Decode(reference.Load("latents").to(dtype, device)).to(float32).cpu();
            }
            Record("Stage A", Decoded(ScalarType.BFloat16), Decoded(ScalarType.Float32));
        }
        string figures = "bfloat16 vs float32, one forward pass: " + string.Join(", ", errors);
        TestContext.Current.SendDiagnosticMessage(figures);
        Assert.True(worst <= ForwardTolerance, figures);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void OneSamplingStepInBfloat16StaysCloseToFloat32AndWholeRunsStaySane(string caseName)
    {
        using var scope = NewDisposeScope();
        using var fixture = PipelineCase.Open(caseName);
        var token = TestContext.Current.CancellationToken;
        var oneStep = DeviceParityTests.SettingsOf(fixture) with { PriorTimesteps = [1.0, 0.0], DecoderSteps = 1 };

        (Tensor Embeddings, Tensor Latents, Tensor Images) Run(ScalarType dtype, TextToImageSettings settings)
        {
            using var pipeline = DeviceParityTests.LoadPipeline(TestDevice.Options(dtype));
            var embeddings = pipeline.Prior.Generate(settings.ForPrior(), fixture.RecordedNoise("prior"), cancellationToken: token);
            Assert.Equal(dtype, embeddings.dtype);
            var latents = pipeline.Decoder.Generate(embeddings, settings.ForDecoder(), fixture.RecordedNoise("decoder"), cancellationToken: token);
            return (embeddings.to(float32).cpu(), latents.to(float32).cpu(), pipeline.Decoder.Decode(latents));
        }

        var step = (Full: Run(ScalarType.Float32, oneStep), Reduced: Run(ScalarType.BFloat16, oneStep));
        double embeddings = RelativeError(step.Reduced.Embeddings, step.Full.Embeddings);
        double latents = RelativeError(step.Reduced.Latents, step.Full.Latents);
        var whole = (Full: Run(ScalarType.Float32, DeviceParityTests.SettingsOf(fixture)), Reduced: Run(ScalarType.BFloat16, DeviceParityTests.SettingsOf(fixture)));
        double images = (whole.Reduced.Images - whole.Full.Images).abs().mean().item<float>();
        string figures = $"{caseName}: bfloat16 vs float32, one step: image embeddings {embeddings:E2}, Stage B latents {latents:E2}; " +
                         $"whole run: images mean |Δ| {images:E2}";
        TestContext.Current.SendDiagnosticMessage(figures);
        Assert.True(embeddings <= StepTolerance && latents <= StepTolerance, figures);
        Assert.True(images <= TrajectoryImageTolerance, figures);
        Assert.True(whole.Reduced.Images.isfinite().all().item<bool>(), $"{caseName}: bfloat16 images are not finite");
    }

    private static double RelativeError(Tensor actual, Tensor expected)
    {
        using var scope = NewDisposeScope();
        var a = actual.to(float64);
        var b = expected.to(float64);
        return (a - b).abs().mean().item<double>() / b.abs().mean().item<double>();
    }
}
