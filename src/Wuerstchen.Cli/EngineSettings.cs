using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Wuerstchen.Cli;

/// <summary>Options every command that runs the models shares: which models, and how they run.</summary>
public class EngineSettings : CliSettings
{
    [CommandOption("--prior-model <NAME|DIR>")]
    [Description("Stage C model: a name under --models (default warp-ai/wuerstchen-prior), a model folder, or a fine-tuned version (finetuned/{id}).")]
    public string? PriorModel { get; init; }

    [CommandOption("--decoder-model <NAME|DIR>")]
    [Description("Stage B/A model: a name under --models (default warp-ai/wuerstchen) or a model folder.")]
    public string? DecoderModel { get; init; }

    [CommandOption("--device <DEVICE>")]
    [Description("cpu or cuda. Default: Wuerstchen__Models__Device, else cpu.")]
    public string? Device { get; init; }

    [CommandOption("--precision <TYPE>")]
    [Description("float32, bfloat16 or float16. Default: Wuerstchen__Models__Precision, else float32. On a CPU only float32 is fast.")]
    public string? Precision { get; init; }

    [CommandOption("--offline")]
    [Description("Never download models; use only what is on disk (also HF_HUB_OFFLINE=1).")]
    public bool Offline { get; init; }

    public override ValidationResult Validate()
    {
        var result = base.Validate();
        if (!result.Successful)
            return result;
        if (Device is not (null or "cpu" or "cuda"))
            return ValidationResult.Error($"--device must be cpu or cuda, not '{Device}'.");
        if (Precision is not (null or "float32" or "bfloat16" or "float16"))
            return ValidationResult.Error($"--precision must be float32, bfloat16 or float16, not '{Precision}'.");
        return ValidationResult.Success();
    }
}
