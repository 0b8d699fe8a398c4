using System.Text.RegularExpressions;
using Wuerstchen.Pipeline.Models;

namespace Wuerstchen.Pipeline.Training;

/// <summary>The outcome of validating a fine-tune request: the run to start, or the problems by field name.</summary>
public sealed record ValidatedFineTune(FineTuneRun? Run, IReadOnlyDictionary<string, string[]> Errors)
{
    public bool IsValid => Errors.Count == 0;
}

public static partial class FineTuneRequestValidator
{
    public const int MaxTotalSteps = 10_000_000;
    public const int MaxValidationPrompts = 16;

    [GeneratedRegex("^[a-z0-9][a-z0-9-]{0,79}$")]
    private static partial Regex RunIdPattern();

    public static bool IsValidRunId(string? runId) => runId is not null && RunIdPattern().IsMatch(runId);

    /// <param name="modelProblem">Why a model name cannot serve as a role (unknown, or the wrong kind of model), naming the valid ones; null when it can.</param>
    /// <param name="newRunId">Makes the id of a run the request does not name.</param>
    public static ValidatedFineTune Validate(FineTuneRequest? request, TrainingOptions options, Func<string, ModelRole, string?> modelProblem, Func<string> newRunId)
    {
        var errors = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        void Fail(string field, string message)
        {
            if (!errors.TryGetValue(field, out var list))
                errors[field] = list = [];
            list.Add(message);
        }

        if (request is null)
        {
            Fail("body", "A JSON object with at least a dataset is required.");
            return Result(null);
        }

        var recipe = TrainingRecipe.Named(request.Recipe);
        if (recipe is null)
        {
            Fail("recipe", $"'{request.Recipe}' is not a recipe; use {TrainingRecipe.Blog} or {TrainingRecipe.Diffusers}.");
            recipe = TrainingRecipe.BlogRecipe;
        }

        var dataset = request.Dataset;
        if (dataset is null || (dataset.Prefix is null) == (dataset.Folder is null))
            Fail("dataset", "Give exactly one of dataset.prefix (a blob prefix) or dataset.folder (a folder under the datasets root).");
        else if (dataset.Prefix is { } prefix && Storage.AppBlobPrefixes.ClientPrefixProblem(prefix) is { } prefixProblem)
            Fail("dataset.prefix", $"'{prefix}' cannot be a dataset: {prefixProblem}.");
        else if (dataset.Folder is { } folder && DatasetSources.ResolveFolder(folder, options) is null)
            Fail("dataset.folder", string.IsNullOrWhiteSpace(options.DatasetsRoot)
                ? $"Folder datasets are not enabled ({TrainingOptions.Section}:DatasetsRoot is not set)."
                : $"'{folder}' is not a folder under the datasets root.");

        if (request.RunId is { } runId && !IsValidRunId(runId))
            Fail("runId", "Use 1 … 80 lowercase letters, digits and '-', starting with a letter or digit.");

        string basePrior = request.BasePrior ?? recipe.BasePrior;
        if (modelProblem(basePrior, ModelRole.Prior) is { } priorProblem)
            Fail("basePrior", priorProblem);
        string decoder = request.DecoderModel ?? recipe.Validation.DecoderModel;
        if (modelProblem(decoder, ModelRole.Decoder) is { } decoderProblem)
            Fail("decoderModel", decoderProblem);

        int totalSteps = Range("totalSteps", request.TotalSteps ?? recipe.TotalSteps, 1, MaxTotalSteps);
        int stepsPerChunk = Range("stepsPerChunk", request.StepsPerChunk ?? options.StepsPerChunk, 1, 100_000);
        int batchSize = Range("batchSize", request.BatchSize ?? recipe.BatchSize, 1, 1024);
        int accumulation = Range("gradientAccumulation", request.GradientAccumulation ?? recipe.GradientAccumulation, 1, 1024);
        // A recipe's warm-up and EMA interval are meant for a run of its length (the blog's: 1,000 and 100 of 5,000
        // steps). Unless the request names them, they are scaled down to take effect within a shorter run: warm-up at
        // most a fifth of the steps, the EMA updated at least ten times. Named explicitly, they must take effect.
        int warmup = request.WarmupSteps is { } givenWarmup
            ? Range("warmupSteps", givenWarmup, 0, MaxTotalSteps)
            : ScaledWarmup(recipe.WarmupSteps, totalSteps);
        if (request.WarmupSteps is > 0 && warmup >= totalSteps && totalSteps >= 1)
            Fail("warmupSteps", $"{warmup} is not fewer than the run's {totalSteps} steps: the learning rate would never reach its full value. Use fewer warm-up steps, or more steps.");
        int resolution = Range("resolution", request.Resolution ?? recipe.Resolution, 32, 4096);
        if (resolution % 32 != 0)
            Fail("resolution", $"{resolution} is not a multiple of 32 (the encoder's output stride).");
        int emaEvery = request.EmaUpdateEvery is { } givenEvery
            ? Range("emaUpdateEvery", givenEvery, 1, MaxTotalSteps)
            : ScaledEmaInterval(recipe.EmaUpdateEvery, totalSteps);
        if (request.EmaUpdateEvery is { } every && every > totalSteps && totalSteps >= 1)
            Fail("emaUpdateEvery", $"{every} is more than the run's {totalSteps} steps: the EMA would never update, and the published EMA weights would be the base prior's. Use at most {totalSteps}, or more steps.");
        double learningRate = Number("learningRate", request.LearningRate ?? recipe.LearningRate, 0, 1, inclusiveLow: false);
        double weightDecay = Number("weightDecay", request.WeightDecay ?? recipe.WeightDecay, 0, 1);
        double maxGradNorm = Number("maxGradNorm", request.MaxGradNorm ?? recipe.MaxGradNorm, 0, 1e6);
        double captionDropout = Number("captionDropout", request.CaptionDropout ?? recipe.CaptionDropout, 0, 1);
        double emaDecay = Number("emaDecay", request.EmaDecay ?? recipe.EmaDecay, 0, 1);
        if (emaDecay == 1.0)
            Fail("emaDecay", "1 would keep the EMA weights at the base prior's; use a decay below 1 (the blog: 0.9, diffusers: 0.9999).");
        string precision = request.Precision ?? recipe.Precision;
        if (precision is not ("float32" or "bfloat16"))
            Fail("precision", $"'{precision}' is not float32 or bfloat16.");
        string noise = request.NoiseLevels ?? recipe.NoiseLevels;
        if (noise is not (TrainingRecipe.UniformNoise or TrainingRecipe.ShiftedNoise))
            Fail("noiseLevels", $"'{noise}' is not {TrainingRecipe.UniformNoise} or {TrainingRecipe.ShiftedNoise}.");
        string weighting = request.LossWeighting ?? recipe.LossWeighting;
        if (weighting is not (TrainingRecipe.NoWeighting or TrainingRecipe.P2Weighting))
            Fail("lossWeighting", $"'{weighting}' is not {TrainingRecipe.NoWeighting} or {TrainingRecipe.P2Weighting}.");
        if (request.Seed is < 0 or > Generation.GenerationRequestValidator.MaxSeed)
            Fail("seed", $"{request.Seed} is outside 0 … {Generation.GenerationRequestValidator.MaxSeed}.");

        var prompts = request.ValidationPrompts ?? recipe.Validation.Prompts;
        if (prompts.Count is 0 or > MaxValidationPrompts || prompts.Any(string.IsNullOrWhiteSpace))
            Fail("validationPrompts", $"Give 1 … {MaxValidationPrompts} non-empty prompts.");
        var seeds = request.ValidationSeeds is { } given ? given.Select(s => (ulong)Math.Max(0, s)).ToArray() : recipe.Validation.Seeds.ToArray();
        if (request.ValidationSeeds is { } rawSeeds && rawSeeds.Any(s => s is < 0 or > Generation.GenerationRequestValidator.MaxSeed))
            Fail("validationSeeds", "Every seed must lie in 0 … 2^53 − 1.");
        else if (seeds.Length != prompts.Count)
            Fail("validationSeeds", $"Give one seed per validation prompt ({prompts.Count}); got {seeds.Length}.");
        int size = Range("validationSize", request.ValidationSize ?? recipe.Validation.Size, 128, 2048);
        if (size % 128 != 0)
            Fail("validationSize", $"{size} is not a multiple of 128.");
        int priorSteps = Range("validationPriorSteps", request.ValidationPriorSteps ?? recipe.Validation.PriorSteps, 1, 200);
        int decoderSteps = Range("validationDecoderSteps", request.ValidationDecoderSteps ?? recipe.Validation.DecoderSteps, 1, 100);
        double guidance = Number("validationGuidance", request.ValidationGuidance ?? recipe.Validation.PriorGuidance, 0, 30);

        if (errors.Count > 0)
            return Result(null);

        var resolved = recipe with
        {
            BasePrior = basePrior,
            TotalSteps = totalSteps,
            StepsPerChunk = stepsPerChunk,
            LearningRate = learningRate,
            WarmupSteps = warmup,
            WeightDecay = weightDecay,
            BatchSize = batchSize,
            GradientAccumulation = accumulation,
            MaxGradNorm = maxGradNorm,
            Precision = precision,
            Seed = (ulong)(request.Seed ?? 0),
            Resolution = resolution,
            NoiseLevels = noise,
            LossWeighting = weighting,
            CaptionDropout = captionDropout,
            EmaDecay = emaDecay,
            EmaUpdateEvery = emaEvery,
            Dropout = request.Dropout ?? recipe.Dropout,
            Validation = new ValidationSettings
            {
                Prompts = prompts.ToArray(),
                Seeds = seeds,
                Size = size,
                PriorSteps = priorSteps,
                PriorGuidance = guidance,
                DecoderSteps = decoderSteps,
                DecoderModel = decoder,
            },
        };
        var run = new FineTuneRun
        {
            RunId = request.RunId ?? newRunId(),
            Dataset = dataset!,
            DatasetKey = dataset!.Key(),
            Recipe = resolved,
            EffnetModel = options.EffnetModel,
        };
        return Result(run);

        int Range(string field, int value, int low, int high)
        {
            if (value < low || value > high)
                Fail(field, $"{value} is outside {low} … {high}.");
            return value;
        }

        double Number(string field, double value, double low, double high, bool inclusiveLow = true)
        {
            if (!double.IsFinite(value) || value > high || (inclusiveLow ? value < low : value <= low))
                Fail(field, $"{value} is outside {(inclusiveLow ? "" : "(")}{low} … {high}.");
            return value;
        }

        ValidatedFineTune Result(FineTuneRun? value) =>
            new(value, errors.ToDictionary(e => e.Key, e => e.Value.ToArray(), StringComparer.Ordinal));
    }

    /// <summary>A recipe's warm-up for a run of <paramref name="totalSteps"/>: at most a fifth of it (the blog: 1,000 of 5,000).</summary>
    public static int ScaledWarmup(int recipeWarmup, int totalSteps) => Math.Max(0, Math.Min(recipeWarmup, totalSteps / 5));

    /// <summary>A recipe's EMA interval for a run of <paramref name="totalSteps"/>: at least ten updates (the blog: every 100 of 5,000).</summary>
    public static int ScaledEmaInterval(int recipeInterval, int totalSteps) => Math.Max(1, Math.Min(recipeInterval, totalSteps / 10));
}
