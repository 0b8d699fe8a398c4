using System.Text;
using TorchSharp;
using Wuerstchen.Models.IO;

namespace Wuerstchen.Models.Tests.IO;

public sealed class SafetensorsTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    public static TheoryData<torch.ScalarType> StoredTypes => new()
    {
        torch.ScalarType.Float32, torch.ScalarType.Float16, torch.ScalarType.BFloat16, torch.ScalarType.Float64,
        torch.ScalarType.Int64, torch.ScalarType.Int32, torch.ScalarType.Int16, torch.ScalarType.Int8,
        torch.ScalarType.Byte, torch.ScalarType.Bool,
    };

    [Theory]
    [MemberData(nameof(StoredTypes))]
    public void EveryDTypeRoundTripsExactly(torch.ScalarType type)
    {
        using var source = (torch.arange(0, 60, dtype: torch.float64) * 1.5 - 7).reshape(3, 4, 5).to(type);
        string path = _temp.File("roundtrip.safetensors");
        SafetensorsWriter.Save(path, new Dictionary<string, torch.Tensor> { ["a.weight"] = source, ["b"] = source[0] });

        using var file = SafetensorsFile.Open(path);
        using var read = file.Load("a.weight");
        using var row = file.Load("b");
        Assert.Equal(type, read.dtype);
        Assert.Equal(new long[] { 3, 4, 5 }, read.shape);
        Assert.True(read.equal(source).all().item<bool>());
        Assert.True(row.equal(source[0]).all().item<bool>());
    }

    [Fact]
    public void MetadataRoundTripsAndHeaderIsPaddedToEightBytes()
    {
        string path = _temp.File("meta.safetensors");
        using var tensor = torch.ones(3, dtype: torch.float16);
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["recipe"] = "{\"seed\": 7}" };
        SafetensorsWriter.Save(path, new Dictionary<string, torch.Tensor> { ["x"] = tensor }, metadata);

        using var file = SafetensorsFile.Open(path);
        Assert.Equal(metadata, file.Metadata);
        Assert.Equal(0, file.Header.DataOffset % 8);
    }

    [Fact]
    public async Task AsyncWriterProducesTheSameBytesAsTheSyncWriter()
    {
        using var big = torch.randn(600, 1000);
        using var small = torch.arange(5, dtype: torch.int64);
        var tensors = new Dictionary<string, torch.Tensor> { ["big"] = big, ["small"] = small };
        var metadata = new Dictionary<string, string> { ["k"] = "v" };
        using var sync = new MemoryStream();
        using var async = new MemoryStream();
        SafetensorsWriter.Write(sync, tensors, metadata);
        await SafetensorsWriter.WriteAsync(async, tensors, metadata, TestContext.Current.CancellationToken);
        Assert.Equal(sync.ToArray(), async.ToArray());
    }

    [Fact]
    public void LoadConvertsToTheRequestedDType()
    {
        string path = _temp.File("half.safetensors");
        using var half = torch.tensor(new float[] { 0.5f, -2.25f, 1024f }).to(torch.float16);
        SafetensorsWriter.Save(path, new Dictionary<string, torch.Tensor> { ["h"] = half });
        using var file = SafetensorsFile.Open(path);
        using var single = file.Load("h", torch.ScalarType.Float32);
        Assert.Equal(torch.ScalarType.Float32, single.dtype);
        Assert.Equal(new[] { 0.5f, -2.25f, 1024f }, single.data<float>().ToArray());
    }

    [Fact]
    public void WritingToALoadedTensorLeavesTheFileUnchanged()
    {
        string path = _temp.File("cow.safetensors");
        using var ones = torch.ones(4);
        SafetensorsWriter.Save(path, new Dictionary<string, torch.Tensor> { ["w"] = ones });
        byte[] before = File.ReadAllBytes(path);
        using (var file = SafetensorsFile.Open(path))
        using (var loaded = file.Load("w"))
            loaded.mul_(3);
        Assert.Equal(before, File.ReadAllBytes(path));
    }

    [Fact]
    public void UnalignedTensorsAreReadByCopy()
    {
        // 3 bytes of U8 first push the F32 tensor to an offset that is not a multiple of 4.
        string header = "{\"u\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]},\"f\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[3,11]}}";
        var data = new byte[11];
        data[0] = 1; data[1] = 2; data[2] = 3;
        BitConverter.GetBytes(1.5f).CopyTo(data, 3);
        BitConverter.GetBytes(-4f).CopyTo(data, 7);
        string path = WriteRaw("unaligned.safetensors", header, data);

        using var file = SafetensorsFile.Open(path);
        using var f = file.Load("f");
        using var u = file.Load("u");
        Assert.Equal(new[] { 1.5f, -4f }, f.data<float>().ToArray());
        Assert.Equal(new byte[] { 1, 2, 3 }, u.data<byte>().ToArray());
    }

    [Fact]
    public void ReadsTheReferenceFixtures()
    {
        using var file = SafetensorsFile.Open(ParityFixtures.PathOf("cases/text_encoder_prior.safetensors"));
        Assert.Contains("prompts", file.Metadata.Keys);
        using var ids = file.Load("input_ids");
        Assert.Equal(torch.ScalarType.Int64, ids.dtype);
        Assert.Equal(file.Tensors["input_ids"].Shape, ids.shape);
    }

    public static TheoryData<string, string, int, string> Malformed => new()
    {
        { "not-json", "{\"a\": ", 0, "not valid JSON" },
        { "not-object", "[1, 2]", 0, "does not start with a JSON object" },
        { "unknown-dtype", "{\"t\":{\"dtype\":\"F8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, "unknown dtype 'F8'" },
        { "past-end", "{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, "run past the end" },
        { "size-mismatch", "{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "needs 12 bytes" },
        { "overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "overlap" },
        { "duplicate", "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2, "appears twice" },
        { "negative-dim", "{\"t\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0, "negative dimension" },
        { "bad-offsets", "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1]}}", 1, "exactly two numbers" },
        { "bad-metadata", "{\"__metadata__\":{\"a\":1}}", 0, "not a string" },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void MalformedHeadersAreRejectedNamingTheFileAndTensor(string name, string header, int dataLength, string expected)
    {
        string path = WriteRaw(name + ".safetensors", header, new byte[dataLength]);
        var error = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path));
        Assert.Contains(expected, error.Message);
        Assert.Contains(path, error.Message);
        if (header.Contains("\"t\""))
            Assert.Equal("t", error.TensorName);
    }

    [Fact]
    public void TruncatedAndOversizedHeadersAreRejected()
    {
        string tiny = _temp.File("tiny.safetensors");
        File.WriteAllBytes(tiny, new byte[] { 1, 2, 3 });
        Assert.Contains("shorter than the 8-byte", Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(tiny)).Message);

        string huge = _temp.File("huge.safetensors");
        File.WriteAllBytes(huge, BitConverter.GetBytes(ulong.MaxValue));
        Assert.Contains("exceeds the limit", Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(huge)).Message);

        string cut = _temp.File("cut.safetensors");
        File.WriteAllBytes(cut, BitConverter.GetBytes(1000UL).Concat(Encoding.UTF8.GetBytes("{}")).ToArray());
        Assert.Contains("runs past the end", Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(cut)).Message);
    }

    [Fact]
    public void MissingFileAndMissingTensorAreNamed()
    {
        string absent = _temp.File("absent.safetensors");
        Assert.Contains(absent, Assert.Throws<FileNotFoundException>(() => SafetensorsFile.Open(absent)).Message);

        string path = _temp.File("one.safetensors");
        using var one = torch.ones(1);
        SafetensorsWriter.Save(path, new Dictionary<string, torch.Tensor> { ["one"] = one });
        using var file = SafetensorsFile.Open(path);
        Assert.Contains("'two'", Assert.Throws<KeyNotFoundException>(() => file.Load("two")).Message);
    }

    [Fact]
    public void SaveReplacesAtomicallyAndLeavesNoTemporaryFiles()
    {
        string path = _temp.File("atomic.safetensors");
        using var first = torch.zeros(2);
        using var second = torch.ones(3);
        SafetensorsWriter.Save(path, new Dictionary<string, torch.Tensor> { ["x"] = first });
        SafetensorsWriter.Save(path, new Dictionary<string, torch.Tensor> { ["x"] = second });
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(new long[] { 3 }, file.Tensors["x"].Shape);
        Assert.Single(Directory.GetFiles(_temp.Path));
    }

    private string WriteRaw(string name, string header, byte[] data)
    {
        string path = _temp.File(name);
        byte[] json = Encoding.UTF8.GetBytes(header);
        using var stream = File.Create(path);
        stream.Write(BitConverter.GetBytes((ulong)json.Length));
        stream.Write(json);
        stream.Write(data);
        return path;
    }
}
