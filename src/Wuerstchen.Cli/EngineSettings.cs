using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Wuerstchen.Cli;

/// <summary>Options every command that runs the models shares: where models and blobs are, and how the models run.</summary>
public class EngineSettings : CommandSettings
{
    [CommandOption("--models <DIR>")]
    [Description("Folder holding the model repositories (one folder per model name, or a Hugging Face cache). Default: $HF_HOME (~/.cache/huggingface).")]
    public string? ModelsRoot { get; init; }

    [CommandOption("--prior-model <NAME|DIR>")]
    [Description("Stage C model: a name under --models (default warp-ai/wuerstchen-prior) or a model folder.")]
    public string? PriorModel { get; init; }

    [CommandOption("--decoder-model <NAME|DIR>")]
    [Description("Stage B/A model: a name under --models (default warp-ai/wuerstchen) or a model folder.")]
    public string? DecoderModel { get; init; }

    [CommandOption("--device <DEVICE>")]
    [Description("cpu (default) or cuda.")]
    [DefaultValue("cpu")]
    public string Device { get; init; } = "cpu";

    [CommandOption("--precision <TYPE>")]
    [Description("float32 (default), bfloat16 or float16. On a CPU only float32 is fast.")]
    [DefaultValue("float32")]
    public string Precision { get; init; } = "float32";

    [CommandOption("--storage <CONNECTION>")]
    [Description("An Azure Storage connection string (e.g. UseDevelopmentStorage=true for Azurite) to keep latents and images in Blob Storage instead of --store.")]
    public string? StorageConnection { get; init; }

    [CommandOption("--container <NAME>")]
    [Description("Blob container with --storage. Default: wuerstchen.")]
    [DefaultValue("wuerstchen")]
    public string Container { get; init; } = "wuerstchen";

    [CommandOption("--store <DIR>")]
    [Description("Local folder for latents, images and manifests. Default: ~/.cache/wuerstchen/store.")]
    public string? StoreDirectory { get; init; }

    [CommandOption("--offline")]
    [Description("Never download models; use only what is on disk (also HF_HUB_OFFLINE=1).")]
    public bool Offline { get; init; }

    [CommandOption("-v|--verbose")]
    [Description("Log what happens and print stack traces of errors.")]
    public bool Verbose { get; init; }

    public override ValidationResult Validate()
    {
        if (Device is not ("cpu" or "cuda"))
            return ValidationResult.Error($"--device must be cpu or cuda, not '{Device}'.");
        if (Precision is not ("float32" or "bfloat16" or "float16"))
            return ValidationResult.Error($"--precision must be float32, bfloat16 or float16, not '{Precision}'.");
        return ValidationResult.Success();
    }
}
