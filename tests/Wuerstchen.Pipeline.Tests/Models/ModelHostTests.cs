using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using TorchSharp;
using Wuerstchen.Models.Pipelines;
using Wuerstchen.Models.Schedulers;
using Wuerstchen.Models.Tests;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Models;

namespace Wuerstchen.Pipeline.Tests.Models;

/// <summary>Resident pipelines stay within the memory budget, least recently used first out, and one in use is never unloaded.</summary>
public sealed class ModelHostTests
{
    private const string Prior = "prior-pipeline";
    private const string Decoder = "decoder-pipeline";

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static ModelHost Host(string? budget) => new(
        new ModelLocator(Options.Create(new ModelOptions { Root = ParityFixtures.PathOf("models") })),
        Options.Create(new ModelOptions { Root = ParityFixtures.PathOf("models"), MemoryBudget = budget }),
        NullLogger<ModelHost>.Instance);

    private static long Footprint(string model) => ModelFootprint.EstimateBytes(ParityFixtures.PathOf($"models/{model}"), torch.ScalarType.Float32);

    [Fact]
    public async Task ModelsThatFitTheBudgetTogetherStayResident()
    {
        using var host = Host((Footprint(Prior) + Footprint(Decoder)).ToString(System.Globalization.CultureInfo.InvariantCulture));
        var prior = await host.WithPriorAsync(Prior, p => p, Token);
        var decoder = await host.WithDecoderAsync(Decoder, d => d, Token);

        Assert.Same(prior, await host.WithPriorAsync(Prior, p => p, Token));
        Assert.Same(decoder, await host.WithDecoderAsync(Decoder, d => d, Token));
    }

    [Fact]
    public async Task TheLeastRecentlyUsedIdleModelIsUnloadedToMakeRoom()
    {
        long larger = Math.Max(Footprint(Prior), Footprint(Decoder)), smaller = Math.Min(Footprint(Prior), Footprint(Decoder));
        using var host = Host((larger + smaller / 2).ToString(System.Globalization.CultureInfo.InvariantCulture)); // one fits, two do not
        var prior = await host.WithPriorAsync(Prior, p => p, Token);
        var image = await host.WithPriorAsync(Prior, Generate, Token);
        var decoder = await host.WithDecoderAsync(Decoder, d => d, Token);

        var (reloaded, again) = await host.WithPriorAsync(Prior, p => (p, Generate(p)), Token);
        Assert.NotSame(prior, reloaded);
        Assert.Equal(image, again); // loaded afresh, not handed back disposed
        Assert.NotSame(decoder, await host.WithDecoderAsync(Decoder, d => d, Token));
    }

    [Fact]
    public async Task AModelInUseIsNeverUnloadedAndTheExcessGoesWhenItIsReleased()
    {
        using var host = Host("1"); // below any model: every other model is unloaded as soon as it is idle
        using var entered = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var held = Task.Run(() => host.WithPriorAsync(Prior, p =>
        {
            entered.Set();
            release.Wait(Token);
            return (Pipeline: p, Image: Generate(p)); // still usable after the decoder came and went
        }, Token), Token);
        entered.Wait(Token);

        var decoder = await host.WithDecoderAsync(Decoder, d => d, Token);
        Assert.Same(decoder, await host.WithDecoderAsync(Decoder, d => d, Token)); // the prior is in use, so the decoder stays over the budget
        release.Set();
        var (prior, image) = await held;

        Assert.Same(prior, await host.WithPriorAsync(Prior, p => p, Token)); // the most recently used model stays
        Assert.Equal(image, await host.WithPriorAsync(Prior, Generate, Token));
        Assert.NotSame(decoder, await host.WithDecoderAsync(Decoder, d => d, Token)); // released after the prior, it went
    }

    [Fact]
    public void TheBudgetDefaultsToAShareOfTheDevicesMemoryAndIsReadAsASize()
    {
        using (var host = Host(null))
            Assert.Equal((long)(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes * ModelFootprint.CpuDefaultFraction), host.BudgetBytes);
        using (var host = Host("1.5GiB"))
            Assert.Equal(3L << 29, host.BudgetBytes);
        Assert.Equal(24_000_000_000L, new ModelOptions { MemoryBudget = "24 GB" }.MemoryBudgetBytes);
        foreach (string bad in new[] { "0", "-1GiB", "lots", "12 parsecs" })
            Assert.Contains("Wuerstchen:Models:MemoryBudget", Assert.Single(new ModelOptions { Root = "/models", MemoryBudget = bad }.Validate()));
    }

    /// <summary>One Stage C step of a fixed prompt and seed, as numbers.</summary>
    private static float[] Generate(WuerstchenPriorPipeline prior)
    {
        using var scope = torch.NewDisposeScope();
        using var noise = new ItemwiseNoise([7UL], 1);
        var embeddings = prior.Generate(new PriorGenerationSettings { Prompts = ["a kite"], Width = 128, Height = 128, Steps = 1, GuidanceScale = 1 }, noise);
        return embeddings.data<float>().ToArray();
    }
}
