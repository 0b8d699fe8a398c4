using System.Globalization;
using Wuerstchen.Models.Loading;
using Wuerstchen.Models.StageB;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Tests.StageB;

public sealed class WuerstchenDiffNeXtTests
{
    [Fact]
    public void ForwardAndEveryHookMatchTheReference()
    {
        using var scope = NewDisposeScope();
        using var reference = Parity.OpenCase("decoder_forward");
        var decoder = WuerstchenDiffNeXt.FromComponent(ModelRepository.Open(ParityFixtures.PathOf("models/decoder-pipeline")).Component("decoder"));

        var observed = new Dictionary<string, Tensor>();
        using var noGrad = no_grad();
        var output = decoder.Forward(reference.Load("x"), reference.Load("r"), reference.Load("effnet"), reference.Load("clip"),
            (name, value) => observed[name] = value.clone().DetachFromDisposeScope());

        Parity.AssertClose(observed["r_embed"], reference.Load("r_embed"), Parity.ModuleTolerance, "r_embed");
        foreach (string hook in reference.Tensors.Keys.Where(k => k.StartsWith("hook.", StringComparison.Ordinal)).Order())
        {
            string name = hook["hook.".Length..];
            Assert.True(observed.ContainsKey(name), $"the forward pass reports no '{name}'");
            Parity.AssertClose(observed[name], reference.Load(hook), Parity.ModuleTolerance, hook);
        }
        foreach (string resized in reference.Tensors.Keys.Where(k => k.StartsWith("effnet_resized.", StringComparison.Ordinal) && observed.ContainsKey(k)))
            Parity.AssertClose(observed[resized], reference.Load(resized), Parity.ModuleTolerance, $"{resized} (as used in the forward pass)");
        Parity.AssertClose(output, reference.Load("out"), Parity.ModuleTolerance, "out");
    }

    [Fact]
    public void TheConditionMappedOnceGivesEveryStepTheSameOutputAsAFullForwardPass()
    {
        using var scope = NewDisposeScope();
        using var reference = Parity.OpenCase("decoder_forward");
        var decoder = WuerstchenDiffNeXt.FromComponent(ModelRepository.Open(ParityFixtures.PathOf("models/decoder-pipeline")).Component("decoder"));
        using var inference = inference_mode();
        var (x, r, effnet, clip) = (reference.Load("x"), reference.Load("r"), reference.Load("effnet"), reference.Load("clip"));
        var condition = decoder.MapCondition(effnet, clip, x.shape[2], x.shape[3]);
        foreach (var (step, ratio) in new[] { (x, r), (x * 0.5, r * 0.25), (x.flip(0), r.flip(0)) })
            Parity.AssertEqual(decoder.Forward(step, ratio, condition), decoder.forward(step, ratio, effnet, clip), "a step with the mapped condition");

        long multiple = decoder.Config.SpatialGranularity;
        var other = zeros(x.shape[0], x.shape[1], x.shape[2] + multiple, x.shape[3]);
        Assert.Contains("mapped for", Assert.Throws<ArgumentException>(() => decoder.Forward(other, r, condition)).Message);
    }

    [Fact]
    public void IsBuiltOnTheDeviceInTheDtypeItIsAskedFor()
    {
        using var scope = NewDisposeScope();
        var loaded = WuerstchenDiffNeXt.FromComponent(ModelRepository.Open(ParityFixtures.PathOf("models/decoder-pipeline")).Component("decoder"), ScalarType.BFloat16);
        Assert.All(loaded.state_dict(), entry => Assert.Equal(ScalarType.BFloat16, entry.Value.dtype));
    }

    [Fact]
    public void EffnetResizeMatchesTheReferenceAtEveryRecordedSize()
    {
        using var scope = NewDisposeScope();
        using var reference = Parity.OpenCase("decoder_forward");
        var effnet = reference.Load("effnet");
        var keys = reference.Tensors.Keys.Where(k => k.StartsWith("effnet_resized.", StringComparison.Ordinal)).Order().ToList();
        Assert.NotEmpty(keys);
        foreach (string key in keys)
        {
            string[] size = key["effnet_resized.".Length..].Split('x');
            long height = long.Parse(size[0], CultureInfo.InvariantCulture), width = long.Parse(size[1], CultureInfo.InvariantCulture);
            Parity.AssertClose(WuerstchenDiffNeXt.ResizeEffnet(effnet, height, width), reference.Load(key), Parity.ModuleTolerance, key);
        }
    }

    [Fact]
    public void BuildsThePublishedConfigurationWithTheSpecsTensorAndParameterCounts()
    {
        using var scope = NewDisposeScope();
        using var decoder = new WuerstchenDiffNeXt(WuerstchenDiffNeXtConfig.Published);
        var state = decoder.state_dict();
        Assert.Equal(990, state.Count);
        Assert.Equal(1_055_365_280L, state.Values.Sum(t => t.numel()));
        Assert.DoesNotContain("effnet_mappers.0.weight", state.Keys);
        Assert.DoesNotContain("effnet_mappers.7.weight", state.Keys);
        Assert.Equal([5120L, 3584], state["up_blocks.1.0.channelwise.0.weight"].shape);
        Assert.Equal([1280L, 640, 2, 2], state["up_blocks.1.42.1.weight"].shape);
    }

    [Fact]
    public void ReadsEveryFieldOfConfigJsonIncludingCRAndAPerLevelDropout()
    {
        using var directory = new TempDirectory();
        string path = directory.File("config.json");
        File.WriteAllText(path, """
            {"_class_name": "WuerstchenDiffNeXt", "c_in": 3, "c_out": 5, "c_r": 32, "patch_size": 4, "c_cond": 24,
             "c_hidden": [8, 16], "nhead": [-1, 4], "blocks": [2, 3], "level_config": ["CT", "CTA"],
             "inject_effnet": [false, true], "effnet_embd": 6, "clip_embd": 12, "kernel_size": 5, "dropout": [0, 0.1]}
            """);
        var config = WuerstchenDiffNeXtConfig.Read(path);

        Assert.Equal((3, 5, 32, 4, 24, 6, 12, 5), (config.CIn, config.COut, config.CR, config.PatchSize, config.CCond, config.EffnetEmbd, config.ClipEmbd, config.KernelSize));
        Assert.Equal([8, 16], config.CHidden);
        Assert.Equal([-1, 4], config.Nhead);
        Assert.Equal([2, 3], config.Blocks);
        Assert.Equal(["CT", "CTA"], config.LevelConfig);
        Assert.Equal([false, true], config.InjectEffnet);
        Assert.Equal([0.0, 0.1], config.Dropout);
        Assert.Equal(0.1, config.DropoutAt(1));
    }

    [Fact]
    public void ReadsTheFixtureDecodersConfig()
    {
        string path = ParityFixtures.PathOf("models/decoder-pipeline/decoder/config.json");
        var config = WuerstchenDiffNeXtConfig.Read(path);
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(path));
        var dropout = json.RootElement.GetProperty("dropout");
        double[] expected = dropout.ValueKind == System.Text.Json.JsonValueKind.Array ? dropout.EnumerateArray().Select(d => d.GetDouble()).ToArray() : [dropout.GetDouble()];
        Assert.Equal(expected, config.Dropout);
        Assert.Equal(json.RootElement.GetProperty("c_hidden").GetArrayLength(), config.CHidden.Count);
        Assert.Equal(config.CHidden.Count, config.LevelConfig.Count);
    }

    [Theory]
    [InlineData("nhead")]
    [InlineData("blocks")]
    [InlineData("level_config")]
    [InlineData("inject_effnet")]
    public void RejectsAPerLevelListWhoseLengthDiffersFromCHidden(string field)
    {
        var config = field switch
        {
            "nhead" => WuerstchenDiffNeXtConfig.Published with { Nhead = [-1, 10, 20] },
            "blocks" => WuerstchenDiffNeXtConfig.Published with { Blocks = [4, 4, 14, 4, 4] },
            "level_config" => WuerstchenDiffNeXtConfig.Published with { LevelConfig = ["CT", "CTA", "CTA"] },
            _ => WuerstchenDiffNeXtConfig.Published with { InjectEffnet = [false, true] },
        };
        var error = Assert.Throws<ModelConfigException>(() => config.Validate("decoder/config.json"));
        Assert.Contains($"'{field}'", error.Message);
        Assert.Contains("decoder/config.json", error.Message);
    }

    [Fact]
    public void RejectsAHeadCountThatDoesNotDivideAnAttentionLevelsWidth()
    {
        var config = WuerstchenDiffNeXtConfig.Published with { Nhead = [-1, 10, 7, 20] };
        var error = Assert.Throws<ModelConfigException>(() => config.Validate("decoder/config.json"));
        Assert.Contains("'nhead[2]'", error.Message);
    }

    [Fact]
    public void RejectsAnUnknownBlockLetter()
    {
        var config = WuerstchenDiffNeXtConfig.Published with { LevelConfig = ["CT", "CTX", "CTA", "CTA"] };
        var error = Assert.Throws<ModelConfigException>(() => config.Validate("decoder/config.json"));
        Assert.Contains("'level_config[1]'", error.Message);
    }

    [Fact]
    public void RejectsADropoutListThatIsNeitherOneRateNorOnePerLevel()
    {
        var config = WuerstchenDiffNeXtConfig.Published with { Dropout = [0.1, 0.1] };
        var error = Assert.Throws<ModelConfigException>(() => config.Validate("decoder/config.json"));
        Assert.Contains("'dropout'", error.Message);
    }
}
