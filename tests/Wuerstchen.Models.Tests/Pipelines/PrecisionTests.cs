using Wuerstchen.Models.Loading;
using Wuerstchen.Models.Pipelines;
using Wuerstchen.Models.Schedulers;
using Wuerstchen.Models.StageB;
using Wuerstchen.Models.StageC;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Tests.Pipelines;

public sealed class PrecisionTests
{
    public static TheoryData<ScalarType> ReducedPrecisions => new() { ScalarType.BFloat16, ScalarType.Float16 };

    /// <summary>Mean absolute error over mean magnitude: how far the whole tensor is off, not its worst element.</summary>
    private static double RelativeError(Tensor actual, Tensor expected)
    {
        using var scope = NewDisposeScope();
        var a = actual.to(float64);
        var b = expected.to(float64);
        return (a - b).abs().mean().item<double>() / b.abs().mean().item<double>();
    }

    [Theory]
    [MemberData(nameof(ReducedPrecisions))]
    public void StageCAndStageBForwardsInReducedPrecisionStayCloseToTheReference(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using (var reference = Parity.OpenCase("prior_forward"))
        {
            var prior = WuerstchenPrior.FromComponent(ModelRepository.Open(ParityFixtures.PathOf("models/prior-pipeline")).Component("prior"), dtype);
            Assert.Equal(dtype, prior.parameters().First().dtype);
            Tensor? head = null;
            var output = prior.Forward(reference.Load("x", dtype), reference.Load("r"), reference.Load("c", dtype),
                (name, value) => head = name == "out" ? value.clone().DetachFromDisposeScope() : head);
            Assert.Equal(dtype, output.dtype);
            // Judged before the output head: (x − a)/(|1 − b| + 1e-5) magnifies bfloat16 rounding wherever b is near 1.
            double error = RelativeError(head!, reference.Load("hook.out"));
            Assert.True(error < 0.02, $"Stage C in {dtype}: relative error {error:E2}");
        }
        using (var reference = Parity.OpenCase("decoder_forward"))
        {
            var decoder = WuerstchenDiffNeXt.FromComponent(ModelRepository.Open(ParityFixtures.PathOf("models/decoder-pipeline")).Component("decoder"), dtype);
            var output = decoder.forward(reference.Load("x", dtype), reference.Load("r"), reference.Load("effnet", dtype), reference.Load("clip", dtype));
            Assert.Equal(dtype, output.dtype);
            double error = RelativeError(output, reference.Load("out"));
            Assert.True(error < 0.02, $"Stage B in {dtype}: relative error {error:E2}");
        }
    }

    [Fact]
    public void TheWholeCascadeRunsInBfloat16()
    {
        using var scope = NewDisposeScope();
        var options = new InferenceOptions { DType = ScalarType.BFloat16 };
        using var pipeline = new WuerstchenTextToImagePipeline(
            WuerstchenPriorPipeline.FromRepository(ModelRepository.Open(ParityFixtures.PathOf("models/prior-pipeline")), options),
            WuerstchenDecoderPipeline.FromRepository(ModelRepository.Open(ParityFixtures.PathOf("models/decoder-pipeline")), options));
        var settings = new TextToImageSettings { Prompts = ["a red dragon"], Width = 128, Height = 256, PriorTimesteps = [1.0, 0.5, 0.0], DecoderSteps = 2 };

        var images = pipeline.Generate(settings, seed: 5, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(new long[] { 1, 3, 256, 128 }, images.shape);
        Assert.Equal(ScalarType.Float32, images.dtype);
        Assert.True(images.isfinite().all().item<bool>());
        Assert.True(images.min().item<float>() >= 0 && images.max().item<float>() <= 1);
    }
}
