using System.Text.Json;
using Wuerstchen.Models.IO;
using Wuerstchen.Models.Schedulers;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Tests.Pipelines;

/// <summary>A seeded pipeline fixture: its recipe (from the file's <c>case</c> metadata) and its recorded tensors.</summary>
public sealed class PipelineCase : IDisposable
{
    private PipelineCase(string name, SafetensorsFile file, JsonElement recipe)
    {
        Name = name;
        File = file;
        Recipe = recipe;
    }

    public string Name { get; }

    public SafetensorsFile File { get; }

    public JsonElement Recipe { get; }

    public static IEnumerable<string> Names(string prefix) =>
        Directory.EnumerateFiles(ParityFixtures.PathOf("cases"), prefix + "*.safetensors")
            .Select(f => Path.GetFileNameWithoutExtension(f)).Order(StringComparer.Ordinal);

    public static PipelineCase Open(string name)
    {
        var file = Parity.OpenCase(name);
        using var document = JsonDocument.Parse(file.Metadata["case"]);
        return new PipelineCase(name, file, document.RootElement.Clone());
    }

    public IReadOnlyList<string> Prompts => Strings("prompt") ?? throw new InvalidDataException($"{Name}: no prompt.");

    public IReadOnlyList<string>? NegativePrompts => Strings("negative_prompt");

    public int Height => Recipe.GetProperty("height").GetInt32();

    public int Width => Recipe.GetProperty("width").GetInt32();

    public int ImagesPerPrompt => Recipe.GetProperty("n").GetInt32();

    public ulong Seed => Recipe.GetProperty("seed").GetUInt64();

    public double PriorGuidance => Recipe.GetProperty("prior_guidance").GetDouble();

    /// <summary>The case's explicit Stage C schedule, or null when it gives a step count (<see cref="PriorSteps"/>).</summary>
    public IReadOnlyList<double>? PriorTimesteps =>
        Recipe.TryGetProperty("prior_timesteps", out var t) && t.ValueKind == JsonValueKind.Array ? t.EnumerateArray().Select(v => v.GetDouble()).ToArray() : null;

    public int PriorSteps => Recipe.TryGetProperty("prior_steps", out var s) && s.ValueKind == JsonValueKind.Number ? s.GetInt32() : 60;

    public bool HasDecoder => Recipe.TryGetProperty("decoder_steps", out _);

    public int DecoderSteps => Recipe.GetProperty("decoder_steps").GetInt32();

    public double DecoderGuidance => Recipe.GetProperty("decoder_guidance").GetDouble();

    public int Count(string prefix) => File.Tensors.Keys.Count(k => k.StartsWith(prefix, StringComparison.Ordinal) && int.TryParse(k[prefix.Length..], out _));

    public Tensor Load(string key) => File.Load(key);

    /// <summary>The noise the reference drew for a stage (<c>prior</c> or <c>decoder</c>), in draw order.</summary>
    public RecordedNoise RecordedNoise(string stage) =>
        new(Enumerable.Range(0, Count(stage + ".noise.")).Select(i => File.Load($"{stage}.noise.{i}")).ToList(), $"{Name} {stage}");

    private IReadOnlyList<string>? Strings(string key)
    {
        if (!Recipe.TryGetProperty(key, out var value) || value.ValueKind == JsonValueKind.Null)
            return null;
        return value.ValueKind == JsonValueKind.Array ? value.EnumerateArray().Select(v => v.GetString()!).ToArray() : [value.GetString()!];
    }

    public void Dispose() => File.Dispose();
}

/// <summary>Serves the reference's recorded draws in order, checking each requested shape.</summary>
public sealed class RecordedNoise(IReadOnlyList<Tensor> draws, string what) : INoiseSource
{
    public int Served { get; private set; }

    public int Count => draws.Count;

    public Tensor Randn(long[] shape, ScalarType dtype, Device device)
    {
        Assert.True(Served < draws.Count, $"{what}: draw {Served} requested but the reference drew only {draws.Count}.");
        var draw = draws[Served++];
        Assert.True(draw.shape.SequenceEqual(shape), $"{what}: draw {Served - 1} has shape [{string.Join(", ", shape)}], the reference's [{string.Join(", ", draw.shape)}].");
        return draw.to(dtype, device);
    }
}

/// <summary>Wraps a noise source and keeps a copy of every draw, to compare with the reference's.</summary>
public sealed class CapturingNoise(INoiseSource inner) : INoiseSource
{
    public List<Tensor> Draws { get; } = [];

    public Tensor Randn(long[] shape, ScalarType dtype, Device device)
    {
        var draw = inner.Randn(shape, dtype, device);
        Draws.Add(draw.clone().DetachFromDisposeScope());
        return draw;
    }

    /// <summary>Forwards to the inner source's own up-front drawing (the path sampling uses) and keeps each draw.</summary>
    public Tensor RandnSequence(int count, long[] shape, ScalarType dtype, Device device)
    {
        var draws = inner.RandnSequence(count, shape, dtype, device);
        for (int i = 0; i < count; i++)
        {
            using var draw = draws[i];
            Draws.Add(draw.clone().DetachFromDisposeScope());
        }
        return draws;
    }
}
