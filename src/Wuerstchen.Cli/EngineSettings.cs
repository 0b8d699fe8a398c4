using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Models;

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

    [CommandOption("--revision <REV>")]
    [Description("The branch, tag or commit of the Hub models (owner/name) to use and download if missing, e.g. v1.0; recorded in every image's recipe as owner/name@REV. " +
                 "A model option can also name its own: --prior-model warp-ai/wuerstchen-prior@REV. Default: main.")]
    public string? Revision { get; init; }

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
        return RevisionError() ?? ValidationResult.Success();
    }

    /// <summary>The Stage C model name to request: <see cref="PriorModel"/>, pinned to <see cref="Revision"/> when it is a Hub model.</summary>
    public string? PriorModelName => Pinned(PriorModel, ModelNames.DefaultPrior);

    /// <summary>The Stage B/A model name to request, pinned like <see cref="PriorModelName"/>.</summary>
    public string? DecoderModelName => Pinned(DecoderModel, ModelNames.DefaultDecoder);

    private string? Pinned(string? option, string defaultModel)
    {
        if (Revision is null)
            return option;
        string name = option ?? defaultModel;
        return IsHubRepository(name) ? HubModelName.WithRevision(name, Revision) : option;
    }

    /// <summary>A Hub repository id that is neither a folder on disk nor a fine-tuned version, and names no revision yet.</summary>
    private static bool IsHubRepository(string name) =>
        HubModelName.IsRepositoryId(name) && !Directory.Exists(name) && !FineTunedModels.TryParse(name, out _);

    private ValidationResult? RevisionError()
    {
        foreach (var (option, value) in new[] { ("--prior-model", PriorModel), ("--decoder-model", DecoderModel) })
        {
            if (value is null || HubModelName.Split(value) is not (var repository, { } revision))
                continue;
            if (!HubModelName.IsRepositoryId(repository))
                return ValidationResult.Error($"{option} '{value}': only a Hub model (owner/name) takes a revision after '@'.");
            if (!HubModelName.IsValidRevision(revision))
                return ValidationResult.Error($"{option} '{value}': '{revision}' is not a revision; {HubModelName.RevisionRule}.");
            if (Revision is not null)
                return ValidationResult.Error($"{option} '{value}' names its revision already; give it there or with --revision, not both.");
        }
        if (Revision is null)
            return null;
        if (!HubModelName.IsValidRevision(Revision))
            return ValidationResult.Error($"--revision '{Revision}' is not a revision; {HubModelName.RevisionRule}.");
        if (!IsHubRepository(PriorModel ?? ModelNames.DefaultPrior) && !IsHubRepository(DecoderModel ?? ModelNames.DefaultDecoder))
            return ValidationResult.Error("--revision applies to Hub models (owner/name), and --prior-model and --decoder-model name none: they are folders or fine-tuned versions.");
        return null;
    }
}
