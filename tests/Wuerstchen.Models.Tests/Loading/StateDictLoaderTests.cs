using TorchSharp;
using TorchSharp.Modules;
using Wuerstchen.Models.IO;
using Wuerstchen.Models.Loading;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Tests.Loading;

public sealed class StateDictLoaderTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private sealed class Tiny : nn.Module<Tensor, Tensor>
    {
        private readonly Linear proj;
        private readonly BatchNorm2d norm;

        public Tiny(long width = 4) : base(nameof(Tiny))
        {
            proj = nn.Linear(width, 3);
            norm = nn.BatchNorm2d(3);
            RegisterComponents();
        }

        public override Tensor forward(Tensor input) => proj.forward(input);
    }

    private string SaveStateOf(nn.Module module, string name, Func<string, bool>? keep = null)
    {
        string path = _temp.File(name);
        var state = module.state_dict().Where(kv => keep?.Invoke(kv.Key) ?? true).ToDictionary(kv => kv.Key, kv => kv.Value);
        SafetensorsWriter.Save(path, state);
        return path;
    }

    [Fact]
    public void LoadsEveryTensorByExactKey()
    {
        var source = new Tiny();
        using (no_grad())
            source.state_dict()["norm.running_mean"].copy_(tensor(new float[] { 1, 2, 3 }));
        string path = SaveStateOf(source, "tiny.safetensors");

        var target = new Tiny();
        using var weights = CheckpointWeights.Open([path]);
        StateDictLoader.Load(target, weights);

        foreach (var (key, value) in source.state_dict())
            Assert.True(target.state_dict()[key].equal(value).all().item<bool>(), key);
    }

    [Fact]
    public void ReportsEveryMissingUnexpectedAndMisshapenKeyAtOnce()
    {
        string path = _temp.File("bad.safetensors");
        var state = new Tiny(width: 5).state_dict()
            .Where(kv => kv.Key != "norm.running_var")
            .ToDictionary(kv => kv.Key, kv => kv.Value);
        using var extra = zeros(2);
        state["stray.weight"] = extra;
        SafetensorsWriter.Save(path, state);

        using var weights = CheckpointWeights.Open([path]);
        var error = Assert.Throws<CheckpointMismatchException>(() => StateDictLoader.Load(new Tiny(width: 4), weights));
        Assert.Equal(["norm.running_var"], error.Missing);
        Assert.Equal(["stray.weight"], error.Unexpected);
        Assert.Single(error.ShapeMismatches);
        Assert.Contains("proj.weight: checkpoint [3, 5], model [3, 4]", error.Message);
        Assert.Contains(path, error.Message);
    }

    [Fact]
    public void MapKeyRenamesAndDropsCheckpointKeys()
    {
        var source = new Tiny();
        string path = _temp.File("prefixed.safetensors");
        var state = source.state_dict().ToDictionary(kv => "model." + kv.Key, kv => kv.Value);
        using var legacy = zeros(1, dtype: int64);
        state["model.legacy_ids"] = legacy;
        SafetensorsWriter.Save(path, state);

        using var weights = CheckpointWeights.Open([path]);
        var options = new StateDictLoadOptions { MapKey = k => k == "model.legacy_ids" ? null : k["model.".Length..] };
        var target = new Tiny();
        StateDictLoader.Load(target, weights, options);
        Assert.True(target.state_dict()["proj.weight"].equal(source.state_dict()["proj.weight"]).all().item<bool>());
    }

    [Theory]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    public void ConvertsFloatingPointStateToTheRequestedTypeAndKeepsIntegerBuffers(ScalarType dtype)
    {
        var source = new Tiny();
        string path = SaveStateOf(source, "f32.safetensors");
        var target = new Tiny();
        using var weights = CheckpointWeights.Open([path]);
        StateDictLoader.Load(target, weights, new StateDictLoadOptions { DType = dtype });

        var state = target.state_dict();
        Assert.Equal(dtype, state["proj.weight"].dtype);
        Assert.Equal(dtype, state["norm.running_mean"].dtype);
        Assert.Equal(ScalarType.Int64, state["norm.num_batches_tracked"].dtype);
        Assert.True(state["proj.weight"].to(float32).allclose(source.state_dict()["proj.weight"], rtol: 1e-2, atol: 1e-2));
    }

    [Fact]
    public void ConvertsAHalfPrecisionCheckpointIntoAFloatModel()
    {
        var source = new Tiny();
        string path = _temp.File("f16.safetensors");
        SafetensorsWriter.Save(path, source.state_dict().ToDictionary(kv => kv.Key, kv => torch.is_floating_point(kv.Value) ? kv.Value.to(float16) : kv.Value));
        var target = new Tiny();
        using var weights = CheckpointWeights.Open([path]);
        StateDictLoader.Load(target, weights);
        Assert.Equal(ScalarType.Float32, target.state_dict()["proj.weight"].dtype);
        Assert.True(target.state_dict()["proj.weight"].allclose(source.state_dict()["proj.weight"], rtol: 1e-3, atol: 1e-3));
    }
}
