using System.Text.RegularExpressions;
using Wuerstchen.Models.Schedulers;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Tests.Schedulers;

[Collection(ProcessWideState.Name)]
public sealed class SeededNoiseTests
{
    public static TheoryData<string> Seeds()
    {
        using var reference = Parity.OpenCase("rng");
        var seeds = new TheoryData<string>();
        foreach (string seed in reference.Tensors.Keys.Select(k => Regex.Match(k, @"^seed(\d+)\.").Groups[1].Value).Distinct().Order())
            seeds.Add(seed);
        return seeds;
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void ReproducesPyTorchsCpuGeneratorExactly(string seedText)
    {
        using var scope = NewDisposeScope();
        using var reference = Parity.OpenCase("rng");
        ulong seed = ulong.Parse(seedText);
        string prefix = $"seed{seedText}.";
        Tensor Draw(string kind) => reference.Load(reference.Tensors.Keys.Single(k => k.StartsWith(prefix + kind, StringComparison.Ordinal)));
        var first = Draw("randn_");
        var then = Draw("then_randn_");
        var uniform = Draw("rand_");
        var global = Draw("global_randn_");

        using (var noise = new SeededNoise(seed))
        {
            Parity.AssertEqual(noise.Randn(first.shape), first, "first randn");
            Parity.AssertEqual(noise.Randn(then.shape), then, "second randn from the same generator");
        }
        using (var noise = new SeededNoise(seed))
            Parity.AssertEqual(noise.Rand(uniform.shape), uniform, "rand");

        manual_seed((long)seed);
        Parity.AssertEqual(randn(global.shape), global, "randn after manual_seed");
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    public void AStageDrawnUpFrontHoldsTheSameNumbersAsOneDrawPerStep(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        long[] shape = [2, 4, 3, 5];
        using var upFront = new SeededNoise(42);
        using var stepwise = new SeededNoise(42);
        var sequence = upFront.RandnSequence(6, shape, dtype, CPU);
        Assert.Equal([6L, .. shape], sequence.shape);
        Assert.Equal(dtype, sequence.dtype);
        for (int d = 0; d < 6; d++)
            Parity.AssertEqual(sequence[d], stepwise.Randn(shape, dtype), $"draw {d}");
        // The stream continues where the sequence left it.
        Parity.AssertEqual(upFront.Randn([7], dtype), stepwise.Randn([7], dtype), "the draw after the sequence");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // as the pipelines call it: the workers must draw under inference mode too
    public void StreamsDrawingTheirOwnRowsInParallelMatchEachStreamDrawingAlone(bool inInferenceMode)
    {
        using var scope = NewDisposeScope();
        using var mode = inInferenceMode ? inference_mode() : null;
        ulong[] seeds = [3, 1234, 7, 99, 5];
        const long rows = 2;
        long[] shape = [seeds.Length * rows, 16, 3, 3];
        var streams = seeds.Select(s => new SeededNoise(s)).ToArray();
        try
        {
            var sequence = SeededNoise.DrawSequence(streams, rows, 4, shape, ScalarType.Float32, CPU);
            for (int s = 0; s < seeds.Length; s++)
            {
                using var alone = new SeededNoise(seeds[s]);
                for (int d = 0; d < 4; d++)
                    Parity.AssertEqual(sequence[d].narrow(0, s * rows, rows), alone.Randn([rows, .. shape[1..]]), $"stream {s}, draw {d}");
            }
        }
        finally
        {
            foreach (var stream in streams)
                stream.Dispose();
        }
        Assert.Throws<ArgumentException>(() => SeededNoise.DrawSequence(streams, rows, 1, [7, 1], ScalarType.Float32, CPU));
    }

    [Fact]
    public void SavedStateResumesTheSameStream()
    {
        using var scope = NewDisposeScope();
        using var noise = new SeededNoise(99);
        noise.Randn([10]);
        byte[] state = noise.GetState();
        var expected = noise.Randn([3, 5]);
        noise.Randn([7]);
        noise.SetState(state);
        Parity.AssertEqual(noise.Randn([3, 5]), expected, "stream after restoring the state");
    }
}
