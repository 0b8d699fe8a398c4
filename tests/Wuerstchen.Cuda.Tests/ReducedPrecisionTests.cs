using Wuerstchen.Models.Imaging;
using Wuerstchen.Models.Tests;
using Wuerstchen.Models.Tests.Pipelines;
using static TorchSharp.torch;

namespace Wuerstchen.Cuda.Tests;

/// <summary>
/// The fixture pipelines in bfloat16 on the device against the same pipelines in float32 on the device, both fed the
/// reference's recorded noise. The measure is the relative error of the whole tensor (mean |a − b| over mean |b|),
/// not its worst element: bfloat16 keeps 8 bits of mantissa, and the random fixture weights amplify rounding from step
/// to step. The tolerances hold the figures measured on the CPU with a margin of about 3×.
/// </summary>
[Trait("Category", "Cuda")]
[Collection(DeviceCollection.Name)]
public sealed class ReducedPrecisionTests
{
    /// <summary>Stage C's image embeddings and Stage B's final latents: relative error of the whole tensor.</summary>
    public const double LatentTolerance = 0.05;

    /// <summary>Images in [0, 1]: mean |a − b| over all pixels.</summary>
    public const double ImageTolerance = 0.03;

    public static TheoryData<string> Cases() => DeviceParityTests.Cases();

    [Theory]
    [MemberData(nameof(Cases))]
    public void Bfloat16StaysWithinTheDocumentedToleranceOfFloat32(string caseName)
    {
        using var scope = NewDisposeScope();
        using var fixture = PipelineCase.Open(caseName);
        var settings = DeviceParityTests.SettingsOf(fixture);
        var token = TestContext.Current.CancellationToken;

        (Tensor Embeddings, Tensor Latents, Tensor Images) Run(ScalarType dtype)
        {
            using var pipeline = DeviceParityTests.LoadPipeline(TestDevice.Options(dtype));
            var embeddings = pipeline.Prior.Generate(settings.ForPrior(), fixture.RecordedNoise("prior"), cancellationToken: token);
            Assert.Equal(dtype, embeddings.dtype);
            var latents = pipeline.Decoder.Generate(embeddings, settings.ForDecoder(), fixture.RecordedNoise("decoder"), cancellationToken: token);
            return (embeddings.to(float32).cpu(), latents.to(float32).cpu(), pipeline.Decoder.Decode(latents));
        }

        var full = Run(ScalarType.Float32);
        var reduced = Run(ScalarType.BFloat16);
        double embeddings = RelativeError(reduced.Embeddings, full.Embeddings);
        double latents = RelativeError(reduced.Latents, full.Latents);
        double images = (reduced.Images - full.Images).abs().mean().item<float>();
        string figures = $"{caseName}: bfloat16 vs float32 relative error: image embeddings {embeddings:E2}, Stage B latents {latents:E2}; images mean |Δ| {images:E2}";
        TestContext.Current.SendDiagnosticMessage(figures);
        Assert.True(embeddings <= LatentTolerance && latents <= LatentTolerance && images <= ImageTolerance, figures);
        Assert.True(reduced.Images.isfinite().all().item<bool>(), $"{caseName}: bfloat16 images are not finite");
    }

    private static double RelativeError(Tensor actual, Tensor expected)
    {
        using var scope = NewDisposeScope();
        var a = actual.to(float64);
        var b = expected.to(float64);
        return (a - b).abs().mean().item<double>() / b.abs().mean().item<double>();
    }
}
