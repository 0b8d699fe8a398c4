using System.ComponentModel;
using System.Globalization;
using Spectre.Console;
using Spectre.Console.Cli;
using Wuerstchen.Pipeline.Generation;

namespace Wuerstchen.Cli;

/// <summary>The generation options <c>generate</c> and <c>bulk</c> share; defaults are the recommended recipe.</summary>
public class SamplingSettings : EngineSettings
{
    [CommandOption("-W|--width <PX>")]
    [Description("Width in pixels, a multiple of 128. Default 1024.")]
    public int? Width { get; init; }

    [CommandOption("-H|--height <PX>")]
    [Description("Height in pixels, a multiple of 128. Default 1024.")]
    public int? Height { get; init; }

    [CommandOption("-i|--images <N>")]
    [Description("Images per prompt. Default 1.")]
    public int? Images { get; init; }

    [CommandOption("-s|--seed <SEED>")]
    [Description("0 … 2^53−1; random when absent (printed, and embedded in the PNG). Bulk: the first prompt's seed, +1 per prompt.")]
    public long? Seed { get; init; }

    [CommandOption("--prior-steps <N>")]
    [Description("Evenly spaced Stage C steps instead of the recommended 29-step schedule.")]
    public int? PriorSteps { get; init; }

    [CommandOption("--prior-timesteps <LIST>")]
    [Description("An explicit Stage C schedule, comma-separated, from 1 down to 0 (e.g. 1,0.75,0.5,0).")]
    public string? PriorTimesteps { get; init; }

    [CommandOption("--prior-guidance <SCALE>")]
    [Description("Stage C classifier-free guidance. Default 4.")]
    public double? PriorGuidance { get; init; }

    [CommandOption("--decoder-steps <N>")]
    [Description("Stage B steps. Default 12.")]
    public int? DecoderSteps { get; init; }

    [CommandOption("--decoder-guidance <SCALE>")]
    [Description("Stage B classifier-free guidance. Default 0 (off).")]
    public double? DecoderGuidance { get; init; }

    [CommandOption("-o|--output <DIR>")]
    [Description("Where the PNG files go. Default ./outputs.")]
    [DefaultValue("outputs")]
    public string Output { get; init; } = "outputs";

    public override ValidationResult Validate()
    {
        var result = base.Validate();
        if (!result.Successful)
            return result;
        if (PriorTimesteps is not null && ParseTimesteps() is null)
            return ValidationResult.Error($"--prior-timesteps '{PriorTimesteps}' is not a comma-separated list of numbers.");
        return OutputFolderError("--output", Output) ?? ValidationResult.Success();
    }

    /// <summary>The generation request's fields as these options, where the names differ (the rest are kebab-case: priorSteps → --prior-steps).</summary>
    public static readonly IReadOnlyDictionary<string, string> Options = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["prompt"] = "PROMPT",
        ["negativePrompt"] = "--negative",
    };

    /// <summary>The request these options describe; prompt fields are the command's to fill.</summary>
    public GenerationRequest ToRequest(LocalEngine engine) => new()
    {
        Width = Width,
        Height = Height,
        Images = Images,
        Seed = Seed,
        PriorSteps = PriorSteps,
        PriorTimesteps = ParseTimesteps(),
        PriorGuidance = PriorGuidance,
        DecoderSteps = DecoderSteps,
        DecoderGuidance = DecoderGuidance,
        PriorModel = engine.PriorModel,
        DecoderModel = engine.DecoderModel,
    };

    private double[]? ParseTimesteps()
    {
        if (PriorTimesteps is null)
            return null;
        var values = new List<double>();
        foreach (string part in PriorTimesteps.Split(','))
        {
            if (!double.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out double value))
                return null;
            values.Add(value);
        }
        return values.ToArray();
    }
}
