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
