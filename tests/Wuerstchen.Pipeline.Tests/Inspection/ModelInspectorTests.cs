using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text.Json;
using Wuerstchen.Models.Tests;
using Wuerstchen.Pipeline.Inspection;

namespace Wuerstchen.Pipeline.Tests.Inspection;

public sealed class ModelInspectorTests
{
    [Theory]
    [InlineData("models/prior-pipeline", "WuerstchenPriorPipeline")]
    [InlineData("models/decoder-pipeline", "WuerstchenDecoderPipeline")]
    [InlineData("models/effnet", null)]
    public async Task CountsAndHashesEqualWhatTheFilesSay(string fixture, string? pipelineClass)
    {
        string root = ParityFixtures.PathOf(fixture);

        var report = await new ModelInspector().InspectAsync(root, TestContext.Current.CancellationToken);

        Assert.Equal(pipelineClass, report.PipelineClass);
        var weightFiles = Directory.EnumerateFiles(root, "*.safetensors", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(weightFiles.Select(f => Path.GetRelativePath(root, f)), report.Components.SelectMany(c => c.WeightFiles).Select(f => f.Path).Order(StringComparer.Ordinal));
        foreach (var component in report.Components)
        {
            var expected = component.WeightFiles.Select(f => ReadHeader(Path.Combine(root, f.Path))).ToArray();
            Assert.Equal(expected.Sum(h => h.Count), component.TensorCount);
            Assert.Equal(expected.Sum(h => h.Sum(t => t.Elements)), component.ParameterCount);
            var histogram = expected.SelectMany(h => h).GroupBy(t => t.DType).OrderBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => new DTypeCount(g.Key, g.Count(), g.Sum(t => t.Elements)));
            Assert.Equal(histogram, component.DTypes);

            foreach (var file in component.WeightFiles)
            {
                string path = Path.Combine(root, file.Path);
                Assert.Equal(new FileInfo(path).Length, file.SizeBytes);
                Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path))), file.Sha256);
                Assert.Equal(ReadHeader(path).Count, file.TensorCount);
            }
        }
    }

    [Fact]
    public async Task NamesEachComponentsClassAndConfigAndSerialisesToJson()
    {
        var report = await new ModelInspector(new InspectionOptions { ComputeSha256 = false })
            .InspectAsync(ParityFixtures.PathOf("models/prior-pipeline"), TestContext.Current.CancellationToken);

        Assert.Equal(["prior", "scheduler", "text_encoder", "tokenizer"], report.Components.Select(c => c.Name));
        var prior = report.Components.Single(c => c.Name == "prior");
        Assert.Equal("WuerstchenPrior", prior.ClassName);
        Assert.Equal(Path.Combine("prior", "config.json"), prior.ConfigFile);
        Assert.True(prior.Config!.Value.TryGetProperty("c_in", out _));
        Assert.Null(prior.WeightFiles.Single().Sha256);
        var scheduler = report.Components.Single(c => c.Name == "scheduler");
        Assert.Equal(Path.Combine("scheduler", "scheduler_config.json"), scheduler.ConfigFile);
        Assert.Empty(scheduler.WeightFiles);
        Assert.Equal("CLIPTokenizer", report.Components.Single(c => c.Name == "tokenizer").ClassName);

        using var json = JsonDocument.Parse(JsonSerializer.Serialize(report));
        Assert.Equal("WuerstchenPriorPipeline", json.RootElement.GetProperty("PipelineClass").GetString());
        Assert.Equal(prior.TensorCount, json.RootElement.GetProperty("Components")[0].GetProperty("TensorCount").GetInt32());
    }

    /// <summary>The tensors a safetensors header lists, parsed here independently of the code under test.</summary>
    private static List<(string DType, long Elements)> ReadHeader(string path)
    {
        using var stream = File.OpenRead(path);
        Span<byte> prefix = stackalloc byte[8];
        stream.ReadExactly(prefix);
        var json = new byte[BinaryPrimitives.ReadUInt64LittleEndian(prefix)];
        stream.ReadExactly(json);
        using var header = JsonDocument.Parse(json);
        return header.RootElement.EnumerateObject()
            .Where(p => p.Name != "__metadata__")
            .Select(p => (p.Value.GetProperty("dtype").GetString()!, p.Value.GetProperty("shape").EnumerateArray().Aggregate(1L, (n, d) => n * d.GetInt64())))
            .ToList();
    }
}
