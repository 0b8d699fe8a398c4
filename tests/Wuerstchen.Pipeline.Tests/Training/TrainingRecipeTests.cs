using Wuerstchen.Pipeline.Training;

namespace Wuerstchen.Pipeline.Tests.Training;

public sealed class TrainingRecipeTests
{
    private static readonly TrainingOptions Options = new();

    private static FineTuneRun Resolve(FineTuneRequest request)
    {
        var validated = FineTuneRequestValidator.Validate(request, Options, (_, _) => null, () => "generated");
        Assert.True(validated.IsValid, string.Join("; ", validated.Errors.Select(e => $"{e.Key}: {string.Join(" ", e.Value)}")));
        return validated.Run!;
    }

    [Fact]
    public void TheTwoRecipesAreTheDiffusersExampleAndTheSeedBlog()
    {
        var diffusers = Resolve(new FineTuneRequest { Dataset = new DatasetLocation { Prefix = "d/" }, Recipe = "diffusers" }).Recipe;
        Assert.Equal((TrainingRecipe.UniformNoise, TrainingRecipe.NoWeighting, 0.0, 0.0, 0), (diffusers.NoiseLevels, diffusers.LossWeighting, diffusers.CaptionDropout, diffusers.WeightDecay, diffusers.WarmupSteps));
        Assert.Equal((0.9999, 1, true), (diffusers.EmaDecay, diffusers.EmaUpdateEvery, diffusers.EmaWarmup));

        var blog = Resolve(new FineTuneRequest { Dataset = new DatasetLocation { Prefix = "d/" } }).Recipe;
        Assert.Equal((TrainingRecipe.ShiftedNoise, TrainingRecipe.P2Weighting, 0.05, 0.01, 1000), (blog.NoiseLevels, blog.LossWeighting, blog.CaptionDropout, blog.WeightDecay, blog.WarmupSteps));
        Assert.Equal((0.9, 100, false), (blog.EmaDecay, blog.EmaUpdateEvery, blog.EmaWarmup));
        Assert.Equal("generated", Resolve(new FineTuneRequest { Dataset = new DatasetLocation { Prefix = "d/" } }).RunId);
    }

    [Fact]
    public void TheWarmUpRisesLinearlyFromZeroAsTheBlogsSchedulerDoes()
    {
        var recipe = TrainingRecipe.BlogRecipe with { LearningRate = 1e-4, WarmupSteps = 4 };
        Assert.Equal([0, 0.25e-4, 0.5e-4, 0.75e-4, 1e-4, 1e-4], Enumerable.Range(0, 6).Select(recipe.LearningRateAt), (a, b) => Math.Abs(a - b) < 1e-15);
        Assert.Equal(1e-4, TrainingRecipe.DiffusersRecipe.LearningRateAt(0));
    }

    [Fact]
    public void TheRecipeHashIgnoresHowLongAndHowChunkedButNotWhatIsTrained()
    {
        var recipe = TrainingRecipe.BlogRecipe;
        Assert.Equal(recipe.Hash(), (recipe with { TotalSteps = 1, StepsPerChunk = 7, Validation = new ValidationSettings { Size = 128 } }).Hash());
        Assert.NotEqual(recipe.Hash(), (recipe with { Seed = 1 }).Hash());
        Assert.NotEqual(recipe.Hash(), (recipe with { CaptionDropout = 0.1 }).Hash());
    }

    [Fact]
    public void DatasetKeysAreReadableAndDistinct()
    {
        string key = new DatasetLocation { Prefix = "datasets/Pokémon Cards/" }.Key();
        Assert.Matches("^pok-mon-cards-[0-9a-f]{10}$", key);
        Assert.NotEqual(key, new DatasetLocation { Folder = "datasets/Pokémon Cards" }.Key());
    }

    [Fact]
    public void AShorterRunScalesTheRecipesWarmUpAndEmaIntervalSoBothTakeEffect()
    {
        // The blog's 1,000 warm-up steps and EMA every 100 steps are for its 5,000 steps; a 30-step run would publish
        // the base prior as its EMA weights and never reach the full learning rate.
        var thirty = Resolve(new FineTuneRequest { Dataset = new DatasetLocation { Prefix = "d/" }, TotalSteps = 30 }).Recipe;
        Assert.Equal((6, 3), (thirty.WarmupSteps, thirty.EmaUpdateEvery));
        var full = Resolve(new FineTuneRequest { Dataset = new DatasetLocation { Prefix = "d/" }, TotalSteps = 5000 }).Recipe;
        Assert.Equal((1000, 100), (full.WarmupSteps, full.EmaUpdateEvery));
        var longer = Resolve(new FineTuneRequest { Dataset = new DatasetLocation { Prefix = "d/" }, TotalSteps = 50_000 }).Recipe;
        Assert.Equal((1000, 100), (longer.WarmupSteps, longer.EmaUpdateEvery));
        var one = Resolve(new FineTuneRequest { Dataset = new DatasetLocation { Prefix = "d/" }, TotalSteps = 1 }).Recipe;
        Assert.Equal((0, 1), (one.WarmupSteps, one.EmaUpdateEvery));
        // Named explicitly, they are kept as given.
        var named = Resolve(new FineTuneRequest { Dataset = new DatasetLocation { Prefix = "d/" }, TotalSteps = 30, WarmupSteps = 10, EmaUpdateEvery = 30 }).Recipe;
        Assert.Equal((10, 30), (named.WarmupSteps, named.EmaUpdateEvery));
    }

    [Fact]
    public void AnEmaOrWarmUpThatCannotTakeEffectWithinTheRunIsRefused()
    {
        var validated = FineTuneRequestValidator.Validate(new FineTuneRequest
        {
            Dataset = new DatasetLocation { Prefix = "d/" },
            TotalSteps = 30,
            EmaUpdateEvery = 100,
            WarmupSteps = 30,
            EmaDecay = 1,
        }, Options, (_, _) => null, () => "generated");
        Assert.Equal(["emaDecay", "emaUpdateEvery", "warmupSteps"], validated.Errors.Keys.Order(StringComparer.Ordinal));
        Assert.Contains("the EMA would never update", validated.Errors["emaUpdateEvery"][0]);
        Assert.Contains("never reach its full value", validated.Errors["warmupSteps"][0]);
        Assert.Contains("base prior", validated.Errors["emaDecay"][0]);
    }
}
