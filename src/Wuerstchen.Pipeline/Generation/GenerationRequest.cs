using System.Security.Cryptography;
using System.Text.Json.Serialization;
using Wuerstchen.Models.Pipelines;
using Wuerstchen.Pipeline.Models;

namespace Wuerstchen.Pipeline.Generation;

/// <summary>
/// A request for images of one prompt, as clients send it (HTTP body, CLI options). Every field but the prompt is
/// optional; <see cref="GenerationRequestValidator"/> turns it into a <see cref="GenerationBatch"/> or names each bad field.
/// </summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record GenerationRequest
{
    public string? Prompt { get; init; }
    public string? NegativePrompt { get; init; }
    public int? Width { get; init; }
    public int? Height { get; init; }

    /// <summary>Images of the prompt (the reference's <c>num_images_per_prompt</c>).</summary>
    public int? Images { get; init; }

    /// <summary>0 … 2^53 − 1 (exact in every JSON client); drawn at random when absent.</summary>
    public long? Seed { get; init; }

    /// <summary>Stage B's seed; Seed + 1 when absent.</summary>
    public long? DecoderSeed { get; init; }

    /// <summary>Evenly spaced Stage C steps; when neither this nor <see cref="PriorTimesteps"/> is given, the recommended 29-step schedule.</summary>
    public int? PriorSteps { get; init; }
    public IReadOnlyList<double>? PriorTimesteps { get; init; }
    public double? PriorGuidance { get; init; }
    public int? DecoderSteps { get; init; }
    public double? DecoderGuidance { get; init; }
    public string? PriorModel { get; init; }
    public string? DecoderModel { get; init; }

    /// <summary>
    /// An https URL to POST the final status to, once, when the generation ends (HTTP API only; checked and sent by the
    /// workflows, never part of the recipe).
    /// </summary>
    public string? Webhook { get; init; }
}

/// <summary>What clients may ask for. Bound from <c>Wuerstchen:Limits</c>.</summary>
public sealed class GenerationLimits
{
    public const string Section = "Wuerstchen:Limits";

    public int MaxPromptLength { get; set; } = 2000;
    public int MaxWidth { get; set; } = 2048;
    public int MaxHeight { get; set; } = 2048;
    public int MaxImages { get; set; } = 4;
    public int MaxPriorSteps { get; set; } = 200;
    public int MaxDecoderSteps { get; set; } = 100;
    public double MaxGuidance { get; set; } = 30;

    /// <summary>
    /// The most work one request may ask for, in pixel-steps (images × width × height × (Stage C + Stage B steps)):
    /// each field may be within its own limit while their product is not. The default allows one 2048² image at 200 + 100
    /// steps or four 1024² ones, and refuses four 2048² images at 200 + 100 steps (5.0e9).
    /// </summary>
    public long MaxWorkPerRequest { get; set; } = 2_000_000_000;

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (MaxPromptLength < 1)
            errors.Add($"{Section}:MaxPromptLength is {MaxPromptLength}; it must be at least 1.");
        foreach (var (key, value) in new[] { (nameof(MaxWidth), MaxWidth), (nameof(MaxHeight), MaxHeight) })
        {
            if (value < ImageSize.Grid || value % ImageSize.Grid != 0)
                errors.Add($"{Section}:{key} is {value}; use a multiple of {ImageSize.Grid} px, at least {ImageSize.Grid}.");
        }
        foreach (var (key, value) in new[] { (nameof(MaxImages), MaxImages), (nameof(MaxPriorSteps), MaxPriorSteps), (nameof(MaxDecoderSteps), MaxDecoderSteps) })
        {
            if (value < 1)
                errors.Add($"{Section}:{key} is {value}; it must be at least 1.");
        }
        if (!double.IsFinite(MaxGuidance) || MaxGuidance < 0)
            errors.Add($"{Section}:MaxGuidance is {MaxGuidance}; use a finite number of at least 0.");
        if (MaxWorkPerRequest < 1)
            errors.Add($"{Section}:MaxWorkPerRequest is {MaxWorkPerRequest}; it must be at least 1.");
        return errors;
    }
}

/// <summary>The outcome of validation: the batch to run, or the problems by field name.</summary>
public sealed record ValidatedRequest(GenerationBatch? Batch, IReadOnlyDictionary<string, string[]> Errors)
{
    public bool IsValid => Errors.Count == 0;
}

public static class GenerationRequestValidator
{
    public const long MaxSeed = (1L << 53) - 1;

    /// <param name="modelProblem">Why a model name cannot serve as a role (unknown, or the wrong kind of model), naming the valid ones; null when it can.</param>
    /// <param name="precision">The precision the models run in, recorded in the recipe.</param>
    public static ValidatedRequest Validate(GenerationRequest? request, GenerationLimits limits, Func<string, ModelRole, string?> modelProblem, string precision)
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
            Fail("body", "A JSON object with at least a prompt is required.");
            return Result(null);
        }

        if (string.IsNullOrWhiteSpace(request.Prompt))
            Fail("prompt", "The prompt is required and must not be blank.");
        else if (request.Prompt.Length > limits.MaxPromptLength)
            Fail("prompt", $"The prompt has {request.Prompt.Length} characters; at most {limits.MaxPromptLength} are allowed.");
        else if (HasUnpairedSurrogate(request.Prompt))
            Fail("prompt", "The prompt holds an unpaired UTF-16 surrogate (such as \\ud800), which is not text.");
        if (request.NegativePrompt is { Length: var negativeLength } && negativeLength > limits.MaxPromptLength)
            Fail("negativePrompt", $"The negative prompt has {negativeLength} characters; at most {limits.MaxPromptLength} are allowed.");
        else if (request.NegativePrompt is { } negative && HasUnpairedSurrogate(negative))
            Fail("negativePrompt", "The negative prompt holds an unpaired UTF-16 surrogate (such as \\ud800), which is not text.");

        int width = request.Width ?? 1024, height = request.Height ?? 1024;
        CheckSize("width", width, limits.MaxWidth);
        CheckSize("height", height, limits.MaxHeight);
        void CheckSize(string field, int value, int max)
        {
            if (value <= 0 || value > max)
                Fail(field, $"{value} px is outside 128 … {max} px.");
            else if (value % ImageSize.Grid != 0)
                Fail(field, $"{value} px is not a multiple of {ImageSize.Grid}; the nearest valid sizes are {string.Join(" and ", ImageSize.Nearest(value).Where(s => s <= max))}.");
        }

        int images = request.Images ?? 1;
        if (images < 1 || images > limits.MaxImages)
            Fail("images", $"{images} is outside 1 … {limits.MaxImages}.");

        CheckSeed("seed", request.Seed);
        CheckSeed("decoderSeed", request.DecoderSeed);
        void CheckSeed(string field, long? seed)
        {
            if (seed is < 0 or > MaxSeed)
                Fail(field, $"{seed} is outside 0 … {MaxSeed}.");
        }

        if (request.PriorSteps is not null && request.PriorTimesteps is not null)
            Fail("priorTimesteps", "Give either priorSteps or priorTimesteps, not both.");
        if (request.PriorSteps is < 1 || request.PriorSteps > limits.MaxPriorSteps)
            Fail("priorSteps", $"{request.PriorSteps} is outside 1 … {limits.MaxPriorSteps}.");
        if (request.PriorTimesteps is { } timesteps)
        {
            string? problem = TimestepProblem(timesteps, limits.MaxPriorSteps);
            if (problem is not null)
                Fail("priorTimesteps", problem);
        }
        if (request.DecoderSteps is < 1 || request.DecoderSteps > limits.MaxDecoderSteps)
            Fail("decoderSteps", $"{request.DecoderSteps} is outside 1 … {limits.MaxDecoderSteps}.");
        CheckGuidance("priorGuidance", request.PriorGuidance);
        CheckGuidance("decoderGuidance", request.DecoderGuidance);
        void CheckGuidance(string field, double? guidance)
        {
            if (guidance is { } g && (!double.IsFinite(g) || g < 0 || g > limits.MaxGuidance))
                Fail(field, $"{g} is outside 0 … {limits.MaxGuidance}.");
        }

        string priorModel = request.PriorModel ?? ModelNames.DefaultPrior;
        string decoderModel = request.DecoderModel ?? ModelNames.DefaultDecoder;
        if (modelProblem(priorModel, ModelRole.Prior) is { } priorProblem)
            Fail("priorModel", priorProblem);
        if (modelProblem(decoderModel, ModelRole.Decoder) is { } decoderProblem)
            Fail("decoderModel", decoderProblem);

        if (errors.Count > 0)
            return Result(null);

        ulong seed = (ulong)(request.Seed ?? (long)(BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8)) & MaxSeed));
        var defaults = GenerationSettings.Recommended;
        var settings = new GenerationSettings
        {
            Width = width,
            Height = height,
            ImagesPerPrompt = images,
            PriorTimesteps = request.PriorTimesteps ?? (request.PriorSteps is null ? defaults.PriorTimesteps : null),
            PriorSteps = request.PriorSteps ?? defaults.PriorSteps,
            PriorGuidanceScale = request.PriorGuidance ?? defaults.PriorGuidanceScale,
            DecoderSteps = request.DecoderSteps ?? defaults.DecoderSteps,
            DecoderGuidanceScale = request.DecoderGuidance ?? defaults.DecoderGuidanceScale,
            PriorModel = priorModel,
            DecoderModel = decoderModel,
            Precision = precision,
        };
        if (settings.WorkPerPrompt > limits.MaxWorkPerRequest)
        {
            Fail("work", FormattableString.Invariant($"This request costs {settings.WorkPerPrompt:N0} pixel-steps ({settings.DescribeWork()}); the limit is {limits.MaxWorkPerRequest:N0} ({GenerationLimits.Section}:MaxWorkPerRequest). Ask for fewer or smaller images or fewer steps."));
            return Result(null);
        }
        var item = new GenerationItem
        {
            Prompt = request.Prompt!,
            NegativePrompt = string.IsNullOrEmpty(request.NegativePrompt) ? null : request.NegativePrompt,
            Seed = seed,
            DecoderSeed = request.DecoderSeed is { } decoderSeed ? (ulong)decoderSeed : null,
        };
        return Result(new GenerationBatch { Settings = settings, Items = [item] });

        ValidatedRequest Result(GenerationBatch? batch) =>
            new(batch, errors.ToDictionary(e => e.Key, e => e.Value.ToArray(), StringComparer.Ordinal));
    }

    private static bool HasUnpairedSurrogate(string text)
    {
        for (int i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
                i++;
            else if (char.IsSurrogate(text[i]))
                return true;
        }
        return false;
    }

    private static string? TimestepProblem(IReadOnlyList<double> timesteps, int maxSteps)
    {
        if (timesteps.Count < 2 || timesteps.Count > maxSteps + 1)
            return $"Give 2 … {maxSteps + 1} timesteps; got {timesteps.Count}.";
        for (int i = 0; i < timesteps.Count; i++)
        {
            if (!(timesteps[i] >= 0 && timesteps[i] <= 1))
                return $"Timestep {i} is {timesteps[i]}; every timestep must lie in [0, 1].";
            if (i > 0 && !(timesteps[i] < timesteps[i - 1]))
                return $"Timesteps must strictly decrease; {timesteps[i]} at position {i} follows {timesteps[i - 1]}.";
        }
        return timesteps[^1] == 0 ? null : "The last timestep must be 0.";
    }
}
