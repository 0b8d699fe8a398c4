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
