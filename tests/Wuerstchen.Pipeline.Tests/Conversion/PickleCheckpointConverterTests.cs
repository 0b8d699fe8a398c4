using System.Collections;
using System.Text;
using TorchSharp;
using TorchSharp.PyBridge;
using Wuerstchen.Models.Effnet;
using Wuerstchen.Models.IO;
using Wuerstchen.Models.Loading;
using Wuerstchen.Models.Tests;
using Wuerstchen.Pipeline.Conversion;
using static TorchSharp.torch;

namespace Wuerstchen.Pipeline.Tests.Conversion;

public sealed class PickleCheckpointConverterTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static Dictionary<string, Tensor> SampleStateDict()
    {
        var generator = new Generator(7);
        return new Dictionary<string, Tensor>(StringComparer.Ordinal)
        {
            ["backbone.0.0.weight"] = randn([4, 3, 3, 3], generator: generator),
            ["backbone.0.1.running_mean"] = randn([4], generator: generator).to(ScalarType.Float16),
            ["backbone.0.1.num_batches_tracked"] = tensor(1234L),
            ["mapper.0.weight"] = randn([2, 4, 1, 1], generator: generator).to(ScalarType.BFloat16),
            ["mapper.mask"] = tensor(new[] { true, false, true }),
            ["mapper.wide"] = randn([300, 2], generator: generator, dtype: ScalarType.Float64),
        };
    }

    /// <summary>The layout of dome272's <c>model_v2_stage_b.pt</c>: several state dicts and plain values side by side.</summary>
    private string WriteStageBLikeCheckpoint(Dictionary<string, Tensor> effnet)
    {
        string path = _temp.File("model_v2_stage_b.pt");
        TorchSaveWriter.Save(path, new Dictionary<string, object?>
        {
            ["state_dict"] = new TorchSaveWriter.StateDict(new Dictionary<string, Tensor> { ["blocks.0.weight"] = ones(3, 3) }),
            ["effnet_state_dict"] = new TorchSaveWriter.StateDict(effnet),
            ["optimizer_state_dict"] = new Dictionary<string, object?> { ["lr"] = 1e-4, ["step"] = tensor(5L), ["amsgrad"] = false, ["foreach"] = null },
            ["last_iter"] = 100_000,
            ["wandb_run_id"] = "abc123",
        });
        return path;
    }

    private static void AssertIdentical(Tensor expected, Tensor actual, string name)
    {
        Assert.True(expected.dtype == actual.dtype, $"{name}: dtype {actual.dtype}, expected {expected.dtype}");
        Assert.Equal(expected.shape, actual.shape);
        Assert.True(expected.contiguous().bytes.SequenceEqual(actual.contiguous().bytes), $"{name}: the bytes differ");
    }

    [Fact]
    public async Task ConvertsTheSelectedStateDictTensorForTensor()
    {
        var effnet = SampleStateDict();
        string checkpoint = WriteStageBLikeCheckpoint(effnet);
        string output = _temp.File("effnet/model.safetensors");

        var result = await new PickleCheckpointConverter().ConvertAsync(checkpoint, output,
            new PickleConversionOptions { StateDictKey = "effnet_state_dict" }, TestContext.Current.CancellationToken);

        Assert.Equal(new ConversionResult(output, "effnet_state_dict", effnet.Count, effnet.Values.Sum(t => t.numel())), result);
        using var file = SafetensorsFile.Open(output);
        Assert.Equal(effnet.Keys.Order(StringComparer.Ordinal), file.Tensors.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, expected) in effnet)
            AssertIdentical(expected, file.Load(name), name);
        Assert.Equal(new Dictionary<string, string> { ["format"] = "pt", ["source_file"] = "model_v2_stage_b.pt", ["source_key"] = "effnet_state_dict" }, file.Metadata);
        Assert.Equal([output], Directory.EnumerateFiles(Path.GetDirectoryName(output)!));
    }

    [Fact]
    public async Task ConvertsFloatingTensorsToTheChosenDTypeAndRenamesKeys()
    {
        var effnet = SampleStateDict();
        string checkpoint = WriteStageBLikeCheckpoint(effnet);
        string output = _temp.File("converted.safetensors");

        await new PickleCheckpointConverter().ConvertAsync(checkpoint, output, new PickleConversionOptions
        {
            StateDictKey = "effnet_state_dict",
            DType = ConversionDType.Float32,
            Renames = [new KeyRename("backbone.", "encoder.backbone."), new KeyRename("backbone.0.", "never.")],
        }, TestContext.Current.CancellationToken);

        using var file = SafetensorsFile.Open(output);
        foreach (var (name, original) in effnet)
        {
            string renamed = name.StartsWith("backbone.", StringComparison.Ordinal) ? "encoder." + name : name;
            var expected = original.is_floating_point() ? original.to(ScalarType.Float32) : original;
            AssertIdentical(expected, file.Load(renamed), renamed);
        }
    }

    [Fact]
    public async Task AMissingKeyNamesTheFileAndListsTheTopLevelKeys()
    {
        string checkpoint = WriteStageBLikeCheckpoint(SampleStateDict());

        var error = await Assert.ThrowsAsync<CheckpointConversionException>(() => new PickleCheckpointConverter().ConvertAsync(
            checkpoint, _temp.File("out.safetensors"), new PickleConversionOptions { StateDictKey = "ema_state_dict" }, TestContext.Current.CancellationToken));

        Assert.Equal(checkpoint, error.FilePath);
        Assert.Equal("ema_state_dict", error.Key);
        Assert.Contains(checkpoint, error.Message);
        Assert.Contains("'ema_state_dict'", error.Message);
        Assert.Contains("'effnet_state_dict', 'last_iter', 'optimizer_state_dict', 'state_dict', 'wandb_run_id'", error.Message);
        Assert.False(File.Exists(_temp.File("out.safetensors")));
    }

    [Fact]
    public async Task AnEntryThatIsNotAStateDictIsNamed()
    {
        string checkpoint = WriteStageBLikeCheckpoint(SampleStateDict());

        var error = await Assert.ThrowsAsync<CheckpointConversionException>(() => new PickleCheckpointConverter().ConvertAsync(
            checkpoint, _temp.File("out.safetensors"), new PickleConversionOptions { StateDictKey = "optimizer_state_dict" }, TestContext.Current.CancellationToken));

        Assert.Contains("'optimizer_state_dict'", error.Message);
        Assert.Contains("not tensors: 'amsgrad' (Boolean), 'foreach' (None), 'lr' (Double)", error.Message);
    }

    [Fact]
    public async Task RefusesAPickleThatCallsOsSystemWithoutRunningIt()
    {
        string marker = _temp.File("pwned");
        string checkpoint = _temp.File("evil.pt");
        // {'effnet_state_dict': os.system('touch <marker>')}
        var pickle = new MemoryStream();
        pickle.Write([0x80, 2, (byte)'}', (byte)'(']);
        WriteUnicode(pickle, "effnet_state_dict");
        pickle.Write(Encoding.ASCII.GetBytes("cos\nsystem\n"));
        WriteUnicode(pickle, $"touch {marker}");
        pickle.Write([0x85, (byte)'R', (byte)'u', (byte)'.']);
        TorchSaveWriter.SaveRawPickle(checkpoint, pickle.ToArray());

        var error = await Assert.ThrowsAsync<UnsafePickleException>(() => new PickleCheckpointConverter().ConvertAsync(
            checkpoint, _temp.File("out.safetensors"), new PickleConversionOptions { StateDictKey = "effnet_state_dict" }, TestContext.Current.CancellationToken));

        Assert.Equal(["os.system"], error.Refused);
        Assert.Contains(checkpoint, error.Message);
        Assert.Contains("os.system", error.Message);
        Assert.False(File.Exists(marker));
        Assert.False(File.Exists(_temp.File("out.safetensors")));
    }

    [Fact]
    public async Task RefusesAGlobalEvenWhenItIsOnlyReferenced()
    {
        // Razorvine.Pickle alone would accept these: an unknown global called without arguments, or never called, becomes a dictionary.
        string checkpoint = _temp.File("sneaky.pt");
        var pickle = new MemoryStream();
        pickle.Write([0x80, 2, (byte)'}', (byte)'(']);
        WriteUnicode(pickle, "a");
        pickle.Write(Encoding.ASCII.GetBytes("cbuiltins\neval\n"));
        WriteUnicode(pickle, "b");
        pickle.Write(Encoding.ASCII.GetBytes("csubprocess\nPopen\n"));
        pickle.Write([(byte)')', (byte)'R', (byte)'u', (byte)'.']);
        TorchSaveWriter.SaveRawPickle(checkpoint, pickle.ToArray());

        var error = await Assert.ThrowsAsync<UnsafePickleException>(() => new PickleCheckpointConverter().ConvertAsync(
            checkpoint, _temp.File("out.safetensors"), cancellationToken: TestContext.Current.CancellationToken));

        Assert.Equal(["builtins.eval", "subprocess.Popen"], error.Refused);
    }

    [Fact]
    public async Task AFileThatIsNotAZipArchiveIsNamed()
    {
        string checkpoint = _temp.File("legacy.pt");
        await File.WriteAllBytesAsync(checkpoint, [0x80, 2, (byte)'}', (byte)'.'], TestContext.Current.CancellationToken);

        var error = await Assert.ThrowsAsync<CheckpointConversionException>(() => new PickleCheckpointConverter().ConvertAsync(
            checkpoint, _temp.File("out.safetensors"), cancellationToken: TestContext.Current.CancellationToken));

        Assert.Contains(checkpoint, error.Message);
        Assert.Contains("not a torch.save zip archive", error.Message);
    }

    [Fact]
    public async Task ReadsACheckpointPickledByPyBridgeToo()
    {
        var effnet = SampleStateDict();
        string checkpoint = _temp.File("pybridge.pt");
        var stateDict = new Hashtable();
        foreach (var (name, value) in effnet)
            stateDict[name] = value;
        using (var stream = File.Create(checkpoint))
            PyTorchPickler.PickleStateDict(stream, new Hashtable { ["effnet_state_dict"] = stateDict, ["state_dict"] = new Hashtable { ["w"] = ones(2) } });

        await new PickleCheckpointConverter().ConvertAsync(checkpoint, _temp.File("out.safetensors"),
            new PickleConversionOptions { StateDictKey = "effnet_state_dict" }, TestContext.Current.CancellationToken);

        using var file = SafetensorsFile.Open(_temp.File("out.safetensors"));
        foreach (var (name, expected) in effnet)
            AssertIdentical(expected, file.Load(name), name);
    }

    [Fact]
    public async Task TheConvertedEffnetCheckpointLoadsStrictlyIntoTheEncoder()
    {
        string fixture = ParityFixtures.PathOf("models/effnet");
        Dictionary<string, Tensor> effnet;
        using (var weights = SafetensorsFile.Open(Path.Combine(fixture, "model.safetensors")))
            effnet = weights.LoadAll();
        string checkpoint = WriteStageBLikeCheckpoint(effnet);
        string folder = Path.Combine(_temp.Path, "effnet");
        Directory.CreateDirectory(folder);
        File.Copy(Path.Combine(fixture, "config.json"), Path.Combine(folder, "config.json"));

        var result = await new PickleCheckpointConverter().ConvertAsync(checkpoint, Path.Combine(folder, "model.safetensors"),
            new PickleConversionOptions { StateDictKey = "effnet_state_dict" }, TestContext.Current.CancellationToken);

        Assert.Equal(786, result.TensorCount);
        using (var converted = SafetensorsFile.Open(result.OutputPath))
        {
            foreach (var (name, expected) in effnet)
                AssertIdentical(expected, converted.Load(name), name);
        }
        var model = EfficientNetEncoder.FromComponent(ModelRepository.Open(folder).RootModel());
        Assert.Equal(786, model.state_dict().Count);
    }

    private static void WriteUnicode(Stream pickle, string text)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        pickle.WriteByte((byte)'X');
        pickle.Write(BitConverter.GetBytes(bytes.Length));
        pickle.Write(bytes);
    }
}
