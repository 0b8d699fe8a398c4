using Wuerstchen.Models.Effnet;
using Wuerstchen.Models.Loading;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Tests.Effnet;

public sealed class EfficientNetEncoderTests
{
    private static EfficientNetEncoder LoadFixtureModel() =>
        EfficientNetEncoder.FromComponent(ModelRepository.Open(ParityFixtures.PathOf("models/effnet")).RootModel());

    [Fact]
    public void ForwardAndPriorLatentsMatchTheReference()
    {
        using var scope = NewDisposeScope();
        using var reference = Parity.OpenCase("effnet");
        var model = LoadFixtureModel();

        using var noGrad = no_grad();
        var output = model.forward(reference.Load("pixel_values"));
        Parity.AssertClose(output, reference.Load("out"), Parity.ModuleTolerance, "out");
        Parity.AssertClose(EfficientNetEncoder.ToPriorLatents(output), reference.Load("latents_scaled"), Parity.ModuleTolerance, "latents_scaled");
        Parity.AssertClose(EfficientNetEncoder.ToPriorLatents(reference.Load("out")), reference.Load("latents_scaled"), Parity.SchedulerTolerance, "latents_scaled from the reference out");
    }

    [Fact]
    public void LoadsTheFloat16CheckpointAsFloat32WithEveryBatchNormInEvalMode()
    {
        using var scope = NewDisposeScope();
        var model = LoadFixtureModel();
        foreach (var (name, tensor) in model.state_dict())
            Assert.True(tensor.dtype == (name.EndsWith("num_batches_tracked", StringComparison.Ordinal) ? ScalarType.Int64 : ScalarType.Float32), $"{name} is {tensor.dtype}");
        Assert.All(model.modules(), m => Assert.False(m.training, $"{m.GetName()} is in training mode"));
    }

    [Fact]
    public void BuildsWithTheSpecsTensorAndParameterCounts()
    {
        using var scope = NewDisposeScope();
        var model = new EfficientNetEncoder(new EfficientNetEncoderConfig());
        var state = model.state_dict();
        Assert.Equal(786, state.Count);
        Assert.Equal(20_351_904L, state.Where(s => !s.Key.EndsWith("num_batches_tracked", StringComparison.Ordinal)).Sum(s => s.Value.numel()));
    }

    [Fact]
    public void RejectsABackboneOtherThanV2S()
    {
        var error = Assert.Throws<ModelConfigException>(() => new EfficientNetEncoderConfig { Effnet = "efficientnet_v2_l" }.Validate("effnet/config.json"));
        Assert.Contains("effnet", error.Message);
    }
}
