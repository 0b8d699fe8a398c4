using Wuerstchen.Models.Loading;
using Wuerstchen.Models.StageC;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Tests.StageC;

public sealed class WuerstchenPriorTests
{
    [Fact]
    public void ForwardAndEveryHookMatchTheReference()
    {
        using var scope = NewDisposeScope();
        using var reference = Parity.OpenCase("prior_forward");
        var prior = WuerstchenPrior.FromComponent(ModelRepository.Open(ParityFixtures.PathOf("models/prior-pipeline")).Component("prior"));

        var observed = new Dictionary<string, Tensor>();
        using var noGrad = no_grad();
        var output = prior.Forward(reference.Load("x"), reference.Load("r"), reference.Load("c"), (name, value) => observed[name] = value.clone().DetachFromDisposeScope());

        Parity.AssertClose(observed["r_embed"], reference.Load("r_embed"), Parity.ModuleTolerance, "r_embed");
        foreach (string hook in reference.Tensors.Keys.Where(k => k.StartsWith("hook.", StringComparison.Ordinal)).Order())
        {
            string name = hook["hook.".Length..];
            Assert.True(observed.ContainsKey(name), $"the forward pass reports no '{name}'");
            Parity.AssertClose(observed[name], reference.Load(hook), Parity.ModuleTolerance, hook);
        }
        Parity.AssertClose(output, reference.Load("out"), Parity.ModuleTolerance, "out");
    }

    [Fact]
    public void TheTextMappedOnceGivesEveryStepTheSameOutputAsAFullForwardPass()
    {
        using var scope = NewDisposeScope();
        using var reference = Parity.OpenCase("prior_forward");
        var prior = WuerstchenPrior.FromComponent(ModelRepository.Open(ParityFixtures.PathOf("models/prior-pipeline")).Component("prior"));
        using var inference = inference_mode();
        var (x, r, c) = (reference.Load("x"), reference.Load("r"), reference.Load("c"));
        var condition = prior.MapCondition(c);
        Assert.Equal(prior.Config.Depth, condition.KeyValues.Count);
        foreach (var (step, ratio) in new[] { (x, r), (x * 0.5, r * 0.25), (x.flip(0), r.flip(0)) })
            Parity.AssertEqual(prior.Forward(step, ratio, condition), prior.forward(step, ratio, c), "a step with the mapped condition");
    }

    [Fact]
    public void IsBuiltOnTheDeviceInTheDtypeItIsAskedFor()
    {
        using var scope = NewDisposeScope();
        var config = WuerstchenPriorConfig.Read(ModelRepository.Open(ParityFixtures.PathOf("models/prior-pipeline")).Component("prior").ConfigPath);
        var prior = new WuerstchenPrior(config, CPU, ScalarType.BFloat16);
        Assert.All(prior.state_dict(), entry => Assert.Equal(ScalarType.BFloat16, entry.Value.dtype));
        var loaded = WuerstchenPrior.FromComponent(ModelRepository.Open(ParityFixtures.PathOf("models/prior-pipeline")).Component("prior"), ScalarType.Float16);
        Assert.All(loaded.state_dict(), entry => Assert.Equal(ScalarType.Float16, entry.Value.dtype));
    }

    [Fact]
    public void BuildsThePublishedConfigurationWithTheSpecsTensorAndParameterCounts()
    {
        using var scope = NewDisposeScope();
        var prior = new WuerstchenPrior(WuerstchenPriorConfig.Published);
        var state = prior.state_dict();
        Assert.Equal(648, state.Count);
        Assert.Equal(993_636_896L, state.Values.Sum(t => t.numel()));
    }

    [Fact]
    public void RejectsAHeadCountThatDoesNotDivideTheWidth()
    {
        var error = Assert.Throws<ModelConfigException>(() => new WuerstchenPriorConfig { C = 64, Nhead = 3 }.Validate("prior/config.json"));
        Assert.Contains("nhead", error.Message);
    }
}
