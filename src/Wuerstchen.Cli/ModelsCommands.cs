using System.ComponentModel;
using System.Text.Json;
using Spectre.Console;
using Spectre.Console.Cli;
using Wuerstchen.Models.Loading;
using Wuerstchen.Pipeline.Conversion;
using Wuerstchen.Pipeline.Inspection;
using Wuerstchen.Pipeline.Models;

namespace Wuerstchen.Cli;

public class ModelsSettings : CommandSettings
{
    [CommandOption("--models <DIR>")]
    [Description("Folder holding the model repositories. Default: $HF_HOME (~/.cache/huggingface).")]
    public string? ModelsRoot { get; init; }

    [CommandOption("-v|--verbose")]
    [Description("Print stack traces of errors.")]
    public bool Verbose { get; init; }

    public string Root => ModelsRoot ?? LocalEngine.DefaultModelsRoot();
}

/// <summary><c>wuerstchen models list</c>: the model folders under the root, as names generation requests can use.</summary>
public sealed class ModelsListCommand : Command<ModelsSettings>
{
    public override int Execute(CommandContext context, ModelsSettings settings, CancellationToken cancellationToken)
    {
        var found = ModelCatalog.Find(settings.Root);
        if (found.Count == 0)
        {
            Console.WriteLine($"No models under {Path.GetFullPath(settings.Root)}; fetch one with `wuerstchen models download warp-ai/wuerstchen-prior`.");
            return ExitCodes.Success;
        }
        foreach (var (name, kind, path) in found)
            Console.WriteLine($"{name}\t{kind}\t{path}");
        return ExitCodes.Success;
    }
}

/// <summary><c>wuerstchen models download REPO</c>: the files a pipeline needs, into the Hugging Face cache under the root.</summary>
public sealed class ModelsDownloadCommand : AsyncCommand<ModelsDownloadCommand.Settings>
{
    public sealed class Settings : ModelsSettings
    {
        [CommandArgument(0, "<REPO>")]
        [Description("A Hub repository, e.g. warp-ai/wuerstchen-prior or warp-ai/wuerstchen.")]
        public string Repository { get; init; } = "";

        [CommandOption("--fp16")]
        [Description("The fp16 weights (where a component has them) instead of the full ones.")]
        public bool Fp16 { get; init; }

        [CommandOption("--offline")]
        [Description("Only check the cache (also HF_HUB_OFFLINE=1).")]
        public bool Offline { get; init; }
    }

    public override async Task<int> ExecuteAsync(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var options = ModelAvailability.HubOptionsFor(settings.Root, settings.Offline);
        await ModelAvailability.DownloadAsync(settings.Repository, options, settings.Fp16 ? "fp16" : null, cancellationToken);
        return ExitCodes.Success;
    }
}

/// <summary><c>wuerstchen models inspect NAME|DIR</c>: components, configs, parameter counts, dtypes, checksums.</summary>
public sealed class ModelsInspectCommand : AsyncCommand<ModelsInspectCommand.Settings>
{
    public sealed class Settings : ModelsSettings
    {
        [CommandArgument(0, "<MODEL>")]
        [Description("A model name under --models or a model folder.")]
        public string Model { get; init; } = "";

        [CommandOption("--json")]
        [Description("The whole report as JSON (configs included).")]
        public bool Json { get; init; }

        [CommandOption("--no-checksums")]
        [Description("Skip the SHA-256 of the weight files (reads only headers).")]
        public bool NoChecksums { get; init; }
    }

    public override async Task<int> ExecuteAsync(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        string folder = Directory.Exists(settings.Model)
            ? settings.Model
            : new ModelLocator(Microsoft.Extensions.Options.Options.Create(new ModelOptions { Root = settings.Root })).Resolve(settings.Model);
        var report = await new ModelInspector(new InspectionOptions { ComputeSha256 = !settings.NoChecksums }).InspectAsync(folder, cancellationToken);
        if (settings.Json)
        {
            Console.WriteLine(JsonSerializer.Serialize(report, new JsonSerializerOptions(JsonSerializerDefaults.Web) { WriteIndented = true }));
            return ExitCodes.Success;
        }
        Console.WriteLine($"{report.Root}{(report.PipelineClass is null ? "" : $" ({report.PipelineClass})")}");
        foreach (var component in report.Components)
        {
            string dtypes = string.Join(", ", component.DTypes.Select(d => $"{d.DType}: {d.Tensors}"));
            Console.WriteLine($"  {component.Name}: {component.ClassName ?? "?"}, {component.TensorCount} tensors, {component.ParameterCount:N0} parameters ({dtypes})");
            foreach (var file in component.WeightFiles)
                Console.WriteLine($"    {file.Path}  {file.SizeBytes:N0} bytes{(file.Sha256 is null ? "" : $"  sha256 {file.Sha256}")}");
        }
        return ExitCodes.Success;
    }
}

/// <summary><c>wuerstchen models convert CHECKPOINT OUTPUT</c>: a pickled PyTorch state dict to safetensors, without running pickle code.</summary>
public sealed class ModelsConvertCommand : AsyncCommand<ModelsConvertCommand.Settings>
{
    public sealed class Settings : ModelsSettings
    {
        [CommandArgument(0, "<CHECKPOINT>")]
        [Description("A torch.save file (.pt, .pth, .bin), e.g. model_v2_stage_b.pt from dome272/wuerstchen.")]
        public string Checkpoint { get; init; } = "";

        [CommandArgument(1, "<OUTPUT>")]
        [Description("The .safetensors file to write (atomically).")]
        public string Output { get; init; } = "";

        [CommandOption("--key <KEY>")]
        [Description("The nested state dict to take, e.g. effnet_state_dict. Default: the top level.")]
        public string? Key { get; init; }

        [CommandOption("--dtype <TYPE>")]
        [Description("keep (default), float32 or float16.")]
        [DefaultValue("keep")]
        public string DType { get; init; } = "keep";

        [CommandOption("--rename <FROM=TO>")]
        [Description("Replace a key prefix; repeatable.")]
        public string[] Renames { get; init; } = [];

        public override ValidationResult Validate()
        {
            if (!File.Exists(Checkpoint))
                return ValidationResult.Error($"The checkpoint '{Checkpoint}' does not exist.");
            if (!Enum.TryParse<ConversionDType>(DType, ignoreCase: true, out _))
                return ValidationResult.Error($"--dtype must be keep, float32 or float16, not '{DType}'.");
            return Renames.All(r => r.Contains('=')) ? ValidationResult.Success() : ValidationResult.Error("--rename takes FROM=TO.");
        }
    }

    public override async Task<int> ExecuteAsync(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var options = new PickleConversionOptions
        {
            StateDictKey = settings.Key,
            DType = Enum.Parse<ConversionDType>(settings.DType, ignoreCase: true),
            Renames = settings.Renames.Select(r => r.Split('=', 2)).Select(p => new KeyRename(p[0], p[1])).ToArray(),
        };
        var result = await new PickleCheckpointConverter().ConvertAsync(settings.Checkpoint, settings.Output, options, cancellationToken);
        Console.WriteLine($"Wrote {Path.GetFullPath(result.OutputPath)}: {result.TensorCount} tensors, {result.ParameterCount:N0} parameters{(result.SourceKey is null ? "" : $" from '{result.SourceKey}'")}");
        return ExitCodes.Success;
    }
}

/// <summary>The models a root holds: plain folders (up to two levels, e.g. warp-ai/wuerstchen) and Hugging Face cache entries.</summary>
public static class ModelCatalog
{
    public static IReadOnlyList<(string Name, string Kind, string Path)> Find(string root)
    {
        var found = new List<(string, string, string)>();
        if (!Directory.Exists(root))
            return found;
        foreach (string first in Directory.EnumerateDirectories(root).Order(StringComparer.Ordinal))
        {
            Add(Path.GetFileName(first), first);
            if (!IsModel(first))
            {
                foreach (string second in Directory.EnumerateDirectories(first).Order(StringComparer.Ordinal))
                    Add($"{Path.GetFileName(first)}/{Path.GetFileName(second)}", second);
            }
        }
        foreach (string hub in new[] { Path.Combine(root, "hub"), root })
        {
            if (!Directory.Exists(hub))
                continue;
            foreach (string cached in Directory.EnumerateDirectories(hub, "models--*").Order(StringComparer.Ordinal))
            {
                string reference = Path.Combine(cached, "refs", "main");
                if (File.Exists(reference))
                    Add(Path.GetFileName(cached)["models--".Length..].Replace("--", "/", StringComparison.Ordinal), Path.Combine(cached, "snapshots", File.ReadAllText(reference).Trim()));
            }
        }
        return found;

        void Add(string name, string path)
        {
            if (IsModel(path))
                found.Add((name, Kind(path), path));
        }
    }

    private static bool IsModel(string path) =>
        File.Exists(Path.Combine(path, ModelRepository.ModelIndexFile)) || File.Exists(Path.Combine(path, ModelComponent.ConfigFile));

    private static string Kind(string path)
    {
        try
        {
            return ModelRepository.Open(path).Index?.ClassName ?? "model";
        }
        catch (ModelConfigException)
        {
            return "unreadable";
        }
    }
}
