using Wuerstchen.Models.Training;

namespace Wuerstchen.Pipeline.Training;

/// <summary>
/// Everything a fine-tune's numbers depend on, resolved (no defaults left): the recipe's choices and the request's
/// overrides. Plain data, serialisable; stored with the run and in every checkpoint and published version.
/// </summary>
public sealed record TrainingRecipe
{
    public const string Blog = "blog";
    public const string Diffusers = "diffusers";
    public const string UniformNoise = "uniform";
    public const string ShiftedNoise = "shifted";
    public const string NoWeighting = "none";
    public const string P2Weighting = "p2";

    public string Name { get; init; } = Blog;
    public string BasePrior { get; init; } = Generation.ModelNames.DefaultPrior;
    public int TotalSteps { get; init; } = 5000;
    public int StepsPerChunk { get; init; } = 250;

    public double LearningRate { get; init; } = 1e-4;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;
    public double Epsilon { get; init; } = 1e-8;
    public double WeightDecay { get; init; } = 0.01;

    /// <summary>Linear warm-up from 0 to the learning rate over this many optimiser steps (the blog's GradualWarmupScheduler); 0 = constant.</summary>
    public int WarmupSteps { get; init; } = 1000;

    public double MaxGradNorm { get; init; } = 1.0;
    public int BatchSize { get; init; } = 8;
    public int GradientAccumulation { get; init; } = 1;
    public string Precision { get; init; } = "float32";
    public ulong Seed { get; init; }
    public int Resolution { get; init; } = 768;
    public string NoiseLevels { get; init; } = ShiftedNoise;
    public string LossWeighting { get; init; } = P2Weighting;

    /// <summary>Probability per micro-batch that every caption of the batch becomes "" (the blog: 5 %).</summary>
    public double CaptionDropout { get; init; } = 0.05;

    public double EmaDecay { get; init; } = 0.9;
    public int EmaUpdateEvery { get; init; } = 100;

    /// <summary>diffusers' EMA ramp (min((1+s)/(10+s), decay)); the blog has none.</summary>
    public bool EmaWarmup { get; init; }

    public bool Dropout { get; init; } = true;

    public ValidationSettings Validation { get; init; } = new();

    /// <summary>The seed blog's recipe (docs/upstream.md, "seed blog"), with float32 compute (set bfloat16 where the device has it).</summary>
    public static TrainingRecipe BlogRecipe { get; } = new();

    /// <summary>The diffusers training example's defaults (upstream: train_text_to_image_prior.py): uniform t, plain MSE, EMA 0.9999 every step, no weight decay, constant rate.</summary>
    public static TrainingRecipe DiffusersRecipe { get; } = new()
    {
        Name = Diffusers,
        WeightDecay = 0,
        WarmupSteps = 0,
        BatchSize = 1,
        NoiseLevels = UniformNoise,
        LossWeighting = NoWeighting,
        CaptionDropout = 0,
        EmaDecay = 0.9999,
        EmaUpdateEvery = 1,
        EmaWarmup = true,
    };

    public static TrainingRecipe? Named(string? name) => name switch
    {
        null or Blog => BlogRecipe,
        Diffusers => DiffusersRecipe,
        _ => null,
    };

    /// <summary>The learning rate of optimiser step <paramref name="stepsTaken"/> + 1: base · min(stepsTaken, warm-up)/warm-up, as the blog's scheduler (which starts at 0).</summary>
    public double LearningRateAt(int stepsTaken) =>
        WarmupSteps <= 0 ? LearningRate : LearningRate * Math.Min(stepsTaken, WarmupSteps) / WarmupSteps;

    public OptimizerSettings Optimizer => new()
    {
        LearningRate = LearningRate,
        Beta1 = Beta1,
        Beta2 = Beta2,
        Epsilon = Epsilon,
        WeightDecay = WeightDecay,
        MaxGradNorm = MaxGradNorm,
    };

    public EmaSettings Ema => new() { Decay = EmaDecay, UpdateEvery = EmaUpdateEvery, Warmup = EmaWarmup };

    /// <summary>Identifies the numbers: two runs with the same hash (and data) train the same weights.</summary>
    public string Hash() => TrainingHashes.OfJson(this with { StepsPerChunk = 0, TotalSteps = 0, Validation = new ValidationSettings() })[..16];
}

/// <summary>The validation grid rendered after each chunk: fixed prompts and seeds, an EMA row over a raw row.</summary>
public sealed record ValidationSettings
{
    public IReadOnlyList<string> Prompts { get; init; } = ["a photo of a cat", "a watercolour landscape with mountains", "a red car on a street", "a bowl of fruit"];
    public IReadOnlyList<ulong> Seeds { get; init; } = [0, 1, 2, 3];
    public int Size { get; init; } = 1024;
    public int PriorSteps { get; init; } = 20;
    public double PriorGuidance { get; init; } = 4.0;
    public int DecoderSteps { get; init; } = 12;
    public string DecoderModel { get; init; } = Generation.ModelNames.DefaultDecoder;
}

/// <summary>One fine-tune: its id, dataset, resolved recipe and encoder. Stored as <c>training/runs/{runId}/run.json</c>.</summary>
public sealed record FineTuneRun
{
    public required string RunId { get; init; }
    public required DatasetLocation Dataset { get; init; }
    public required string DatasetKey { get; init; }
    public required TrainingRecipe Recipe { get; init; }
    public required string EffnetModel { get; init; }
}
