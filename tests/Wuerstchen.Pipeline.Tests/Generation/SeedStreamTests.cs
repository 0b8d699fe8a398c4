using Wuerstchen.Pipeline.Bulk;
using Wuerstchen.Pipeline.Generation;

namespace Wuerstchen.Pipeline.Tests.Generation;

/// <summary>Which seeded streams a plan's items draw from: Stage C from the seed, Stage B from the decoder seed.</summary>
public sealed class SeedStreamTests
{
    private static BulkPlan Plan(long baseSeed, IReadOnlyList<BulkPrompt> prompts) => BulkPlanner.Plan(
        new BulkJob { JobId = "seeds", Settings = new GenerationRequest { Seed = baseSeed, Width = 128, Height = 128 } },
        prompts.Select(p => ((BulkPrompt?)p, (string?)null)).ToArray(), new GenerationLimits(), (_, _) => null, "float32", batchSize: 4);

    private static IEnumerable<ulong> Streams(BulkPlan plan) =>
        plan.Batches.SelectMany(b => b.Items).SelectMany(i => new[] { i.Seed, i.EffectiveDecoderSeed });

    [Fact]
    public void NoTwoStreamsOfABulkJobCoincide()
    {
        var prompts = Enumerable.Range(0, 20).Select(i => new BulkPrompt { Prompt = $"prompt {i}" }).ToArray();
        var plan = Plan(100, prompts);
        var items = plan.Batches.SelectMany(b => b.Items).ToArray();

        Assert.Equal(40, Streams(plan).Distinct().Count());
        Assert.Equal(Enumerable.Range(0, 20).Select(k => 100UL + 2 * (ulong)k), items.Select(i => i.Seed));
        Assert.All(items, i => Assert.Equal(i.Seed + 1, i.EffectiveDecoderSeed)); // the reference's convention, per item
    }

    [Fact]
    public void DerivedSeedsStepAroundTheSeedsPromptsNameThemselves()
    {
        var prompts = Enumerable.Range(0, 10).Select(i => new BulkPrompt { Prompt = $"prompt {i}" }).ToArray();
        prompts[7] = prompts[7] with { Seed = 103 }; // prompt 1's derived pair would be 102/103
        prompts[8] = prompts[8] with { Seed = 106 }; // and prompt 3's 106/107
        var plan = Plan(100, prompts);
        var items = plan.Batches.SelectMany(b => b.Items).ToArray();

        Assert.Equal(20, Streams(plan).Distinct().Count());
        Assert.Equal([103UL, 106UL], items.Skip(7).Take(2).Select(i => i.Seed));
        // Prompts 1, 2 (104 is 103's Stage B stream) and 3 move on by twice the job's length; the others keep S + 2k.
        Assert.Equal([100UL, 122UL, 124UL, 126UL, 108UL], items.Take(5).Select(i => i.Seed));
    }

    [Fact]
    public void ASingleGenerationKeepsTheDecoderSeedOneAboveItsSeed()
    {
        var validated = GenerationRequestValidator.Validate(new GenerationRequest { Prompt = "a fox", Seed = 41, Width = 128, Height = 128 },
            new GenerationLimits(), (_, _) => null, "float32");
        var item = Assert.Single(validated.Batch!.Items);
        Assert.Equal((41UL, 42UL), (item.Seed, item.EffectiveDecoderSeed));
        var recipe = validated.Batch.RecipeOf(0, 0);
        Assert.Equal((41UL, 42UL), (recipe.Seed, recipe.DecoderSeed));
    }
}
