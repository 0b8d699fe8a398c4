using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Wuerstchen.Cli;

/// <summary>
/// Options every command shares: where the models and the store are, and where else settings come from. Settings
/// are read as the app reads them — a settings file, then <c>Wuerstchen__…</c> environment variables — and these
/// options take precedence (<see cref="CliConfiguration"/>).
/// </summary>
public class CliSettings : CommandSettings
{
    [CommandOption("--models <DIR>")]
    [Description("Folder holding the model repositories (one folder per model name, or a Hugging Face cache). Default: Wuerstchen__Models__Root, else $HF_HOME (~/.cache/huggingface).")]
    public string? ModelsRoot { get; init; }

    [CommandOption("--settings <FILE>")]
    [Description("A settings file: the app's local.settings.json (Values with Wuerstchen__… names) or appsettings-style JSON. Environment variables override it; options override both.")]
    public string? SettingsFile { get; init; }

    [CommandOption("--storage <CONNECTION>")]
    [Description("An Azure Storage connection string (e.g. UseDevelopmentStorage=true for Azurite) to keep latents, images and model versions in Blob Storage instead of --store.")]
    public string? StorageConnection { get; init; }

    [CommandOption("--container <NAME>")]
    [Description("Blob container with --storage. Default: wuerstchen.")]
    public string? Container { get; init; }

    [CommandOption("--store <DIR>")]
    [Description("Local folder for latents, images, manifests and model versions. Default: ~/.cache/wuerstchen/store.")]
    public string? StoreDirectory { get; init; }

    [CommandOption("-v|--verbose")]
    [Description("Log what happens (on standard error) and print stack traces of errors.")]
    public bool Verbose { get; init; }

    public override ValidationResult Validate()
    {
        if (ModelsRoot is not null && File.Exists(ModelsRoot))
            return ValidationResult.Error($"--models '{ModelsRoot}' is a file; give the folder that holds the model repositories.");
        if (StoreDirectory is not null && File.Exists(StoreDirectory))
            return ValidationResult.Error($"--store '{StoreDirectory}' is a file; give a folder (it is created if missing).");
        if (StoreDirectory is not null && StorageConnection is not null)
            return ValidationResult.Error("Give --store or --storage, not both.");
        if (SettingsFile is not null && !File.Exists(SettingsFile))
            return ValidationResult.Error($"--settings '{SettingsFile}' does not exist.");
        return ValidationResult.Success();
    }

    /// <summary>An output folder option that must not name an existing file (checked before any work).</summary>
    protected static ValidationResult? OutputFolderError(string option, string? path) =>
        path is not null && File.Exists(path) ? ValidationResult.Error($"{option} '{path}' is a file; give a folder (it is created if missing).") : null;
}
