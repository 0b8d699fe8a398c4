using System.ComponentModel;
using System.Text.Json;
using Spectre.Console;
using Spectre.Console.Cli;
using Wuerstchen.Models.Loading;
using Wuerstchen.Pipeline.Conversion;
using Wuerstchen.Pipeline.Hub;
using Wuerstchen.Pipeline.Inspection;
using Wuerstchen.Pipeline.Models;
using Wuerstchen.Pipeline.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Wuerstchen.Cli;

/// <summary>The options of <c>models …</c>: the model root, and the store whose fine-tuned versions <c>list</c> and <c>inspect</c> show.</summary>
public class ModelsSettings : CliSettings
{
    /// <summary>The configuration these options and the environment give (<see cref="CliConfiguration"/>).</summary>
    public Microsoft.Extensions.Configuration.IConfigurationRoot Configuration() => CliConfiguration.Build(this);

    /// <summary>The fine-tuned versions of the configured store; null when it is a local store that does not exist yet.</summary>
    public FineTunedModels? FineTuned(Microsoft.Extensions.Configuration.IConfiguration configuration)
    {
        var storage = CliConfiguration.Storage(configuration);
        if (storage.Validate() is { Count: > 0 } errors)
            throw new CliUsageException("The store settings are not valid: " + string.Join(" ", errors));
        if (storage.Kind == StorageKind.FileSystem && !Directory.Exists(storage.RootPath))
            return null;
        var modelOptions = configuration.GetSection(ModelOptions.Section).Get<ModelOptions>() ?? new ModelOptions();
        modelOptions.Root = CliConfiguration.ModelsRoot(configuration);
        return new FineTunedModels(BlobStoreFactory.Create(storage), Options.Create(modelOptions));
    }

    public ModelLocator Locator(Microsoft.Extensions.Configuration.IConfiguration configuration, FineTunedModels? fineTuned)
    {
        var modelOptions = configuration.GetSection(ModelOptions.Section).Get<ModelOptions>() ?? new ModelOptions();
        modelOptions.Root = CliConfiguration.ModelsRoot(configuration);
        return new ModelLocator(Options.Create(modelOptions), fineTuned);
    }
}

/// <summary><c>wuerstchen models list</c>: the model folders under the root and the fine-tuned versions in the store, as names requests can use.</summary>
public sealed class ModelsListCommand : AsyncCommand<ModelsSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, ModelsSettings settings, CancellationToken cancellationToken)
    {
        var configuration = settings.Configuration();
        string root = CliConfiguration.ModelsRoot(configuration);
        var found = ModelCatalog.Find(root);
        foreach (var (name, kind, path) in found)
            Console.WriteLine($"{name}\t{kind}\t{path}");
        var published = settings.FineTuned(configuration) is { } fineTuned ? await fineTuned.ListAsync(cancellationToken) : [];
        foreach (var model in published)
        {
            foreach (var version in model.Revisions)
            {
                bool newest = version.Revision == model.Latest.Revision;
                string name = newest ? version.Name : version.RevisionName;
                Console.WriteLine($"{name}\tfine-tuned\t{version.Steps} steps of {version.Recipe.Name} on {version.BasePrior}, revision {version.Revision}" +
                                  $"{(newest ? " (newest)" : "")}, {version.CreatedAt:yyyy-MM-dd HH:mm}Z; raw weights: {(newest ? version.RawName : version.RawRevisionName)}");
            }
        }
        if (found.Count == 0 && published.Count == 0)
            Console.WriteLine($"No models under {root} and no fine-tuned versions in {StoreLocation.Describe(configuration, "models/")}; fetch one with `wuerstchen models download warp-ai/wuerstchen-prior`.");
        return ExitCodes.Success;
    }
}

/// <summary><c>wuerstchen models download REPO</c>: the files a pipeline needs, into the Hugging Face cache under the root.</summary>
public sealed class ModelsDownloadCommand : AsyncCommand<ModelsDownloadCommand.Settings>
{
    public sealed class Settings : ModelsSettings
    {
        [CommandArgument(0, "<REPO>")]
        [Description("A Hub repository, e.g. warp-ai/wuerstchen-prior or warp-ai/wuerstchen; REPO@REV for a revision, as `models list` shows it.")]
        public string Repository { get; init; } = "";

        [CommandOption("--fp16")]
        [Description("The fp16 weights (where a component has them) instead of the full ones.")]
        public bool Fp16 { get; init; }

        [CommandOption("--revision <REV>")]
        [Description("The branch, tag or commit to fetch, e.g. v1.0 or a commit hash. Default: main. Use the result as REPO@REV in --prior-model or --decoder-model (or with --revision).")]
        public string? Revision { get; init; }

        [CommandOption("--offline")]
        [Description("Only check the cache (also HF_HUB_OFFLINE=1).")]
        public bool Offline { get; init; }

        public override ValidationResult Validate()
        {
            var result = base.Validate();
            if (!result.Successful)
                return result;
            var (repository, pinned) = HubModelName.Split(Repository);
            if (!HubModelName.IsRepositoryId(repository))
                return ValidationResult.Error($"REPO '{Repository}' is not a Hub repository id of the form owner/name, e.g. warp-ai/wuerstchen-prior.");
            if (pinned is not null && !HubModelName.IsValidRevision(pinned))
                return ValidationResult.Error($"REPO '{Repository}': '{pinned}' is not a revision; {HubModelName.RevisionRule}.");
            if (pinned is not null && Revision is not null)
                return ValidationResult.Error($"REPO '{Repository}' names its revision already; give it there or with --revision, not both.");
            if (Revision is not null && !HubModelName.IsValidRevision(Revision))
                return ValidationResult.Error($"--revision '{Revision}' is not a revision; {HubModelName.RevisionRule}.");
            return ValidationResult.Success();
        }

        /// <summary>The repository and the revision to fetch, from REPO[@REV] and --revision.</summary>
        public (string Repository, string Revision) Target()
        {
            var (repository, pinned) = HubModelName.Split(Repository);
            return (repository, pinned ?? Revision ?? HuggingFaceHubClient.DefaultRevision);
        }
    }

    public override async Task<int> ExecuteAsync(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var options = ModelAvailability.HubOptionsFor(CliConfiguration.ModelsRoot(settings.Configuration()), settings.Offline);
        var (repository, revision) = settings.Target();
        await ModelAvailability.DownloadAsync(repository, revision, options, settings.Fp16 ? "fp16" : null, cancellationToken);
        return ExitCodes.Success;
    }
}

/// <summary><c>wuerstchen models inspect NAME|DIR</c>: components, configs, parameter counts, dtypes, checksums; a fine-tuned version's training too.</summary>
public sealed class ModelsInspectCommand : AsyncCommand<ModelsInspectCommand.Settings>
{
    public sealed class Settings : ModelsSettings
    {
        [CommandArgument(0, "<MODEL>")]
        [Description("A model name under --models, a model folder, or a fine-tuned version (finetuned/{id}[/{revision}][/raw]) in the store.")]
        public string Model { get; init; } = "";

        [CommandOption("--json")]
        [Description("The whole report as JSON (configs included).")]
        public bool Json { get; init; }

        [CommandOption("--no-checksums")]
        [Description("Skip the SHA-256 of the weight files (reads only headers).")]
        public bool NoChecksums { get; init; }
    }

    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public override async Task<int> ExecuteAsync(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var configuration = settings.Configuration();
        ModelVersion? version = null;
        string folder;
        if (Directory.Exists(settings.Model))
        {
            folder = settings.Model;
        }
        else
        {
            var fineTuned = FineTunedModels.TryParse(settings.Model, out _) ? settings.FineTuned(configuration) : null;
            var locator = settings.Locator(configuration, fineTuned);
            string name = locator.Pin(settings.Model);
            if (fineTuned is not null && FineTunedModels.TryParse(name, out var parsed) && parsed.Revision is not null)
                version = await fineTuned.GetAsync(parsed.VersionId, parsed.Revision, cancellationToken);
            folder = locator.Resolve(name);
        }
        var report = await new ModelInspector(new InspectionOptions { ComputeSha256 = !settings.NoChecksums }).InspectAsync(folder, cancellationToken);
        var hub = HubSnapshotOf(settings.Model, folder);
        if (settings.Json)
        {
            var node = JsonSerializer.SerializeToNode(report, JsonOptions)!.AsObject();
            if (version is not null)
                node["fineTuned"] = JsonSerializer.SerializeToNode(version, JsonOptions);
            if (hub is { } h)
                node["hub"] = new System.Text.Json.Nodes.JsonObject { ["repository"] = h.Repository, ["revision"] = h.Revision, ["commit"] = h.Commit };
            Console.WriteLine(node.ToJsonString(JsonOptions));
            return ExitCodes.Success;
        }
        if (version is not null)
        {
            Console.WriteLine($"{version.RevisionName}: fine-tuned from {version.BasePrior} for {version.Steps} steps ({version.Recipe.Name} recipe), " +
                              $"final loss {version.FinalLoss?.ToString("F4", System.Globalization.CultureInfo.InvariantCulture) ?? "–"}, published {version.CreatedAt:yyyy-MM-dd HH:mm}Z");
            Console.WriteLine($"  dataset {version.Dataset} ({version.DatasetItems} items, version {version.DatasetVersion[..Math.Min(12, version.DatasetVersion.Length)]}), run {version.RunId}");
        }
        if (hub is { } snapshot)
            Console.WriteLine($"{snapshot.Repository} at revision {snapshot.Revision}, commit {snapshot.Commit}");
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

    /// <summary>For a model in the Hugging Face cache (<c>…/models--owner--name/snapshots/{commit}</c>): its repository, revision and commit.</summary>
    private static (string Repository, string Revision, string Commit)? HubSnapshotOf(string name, string folder)
    {
        var snapshot = new DirectoryInfo(Path.GetFullPath(folder));
        if (snapshot.Parent is not { Name: "snapshots" } snapshots || snapshots.Parent is not { } repository
            || !repository.Name.StartsWith("models--", StringComparison.Ordinal))
            return null;
        string repositoryId = repository.Name["models--".Length..].Replace("--", "/", StringComparison.Ordinal);
        string revision = HubModelName.Split(name).Revision
            ?? HubModelName.CachedRevisions(repository.FullName).Where(r => r.Commit == snapshot.Name).Select(r => r.Revision).FirstOrDefault()
            ?? snapshot.Name;
        return (repositoryId, revision, snapshot.Name);
    }
}

/// <summary>
/// <c>wuerstchen models convert CHECKPOINT OUTPUT</c>: a pickled PyTorch state dict to safetensors, without running
/// pickle code. OUTPUT is a <c>.safetensors</c> file or a folder (which gets <c>model.safetensors</c>); when the
/// tensors are a model this project knows (the EfficientNet encoder), its <c>config.json</c> is written beside them,
/// so the folder loads as it is.
/// </summary>
public sealed class ModelsConvertCommand : AsyncCommand<ModelsConvertCommand.Settings>
{
    public sealed class Settings : ModelsSettings
    {
        [CommandArgument(0, "<CHECKPOINT>")]
        [Description("A torch.save file (.pt, .pth, .bin), e.g. model_v2_stage_b.pt from dome272/wuerstchen.")]
        public string Checkpoint { get; init; } = "";

        [CommandArgument(1, "<OUTPUT>")]
        [Description("The .safetensors file to write (atomically), or a folder to write model.safetensors and config.json into.")]
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
            if (!Output.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) && File.Exists(Output))
                return ValidationResult.Error($"OUTPUT '{Output}' is a file but not .safetensors; give a .safetensors file or a folder.");
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
        bool toFolder = !settings.Output.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase);
        string output = toFolder ? Path.Combine(settings.Output, ConvertedModelConfig.WeightsFile) : settings.Output;
        if (toFolder)
            Directory.CreateDirectory(settings.Output);
        var result = await new PickleCheckpointConverter().ConvertAsync(settings.Checkpoint, output, options, cancellationToken);
        Console.WriteLine($"Wrote {Path.GetFullPath(result.OutputPath)}: {result.TensorCount} tensors, {result.ParameterCount:N0} parameters{(result.SourceKey is null ? "" : $" from '{result.SourceKey}'")}");
        Console.WriteLine(ConvertedModelConfig.WriteBeside(result.OutputPath));
        return ExitCodes.Success;
    }
}

/// <summary>
/// The models a root holds: plain folders (up to two levels, e.g. warp-ai/wuerstchen) and Hugging Face cache entries,
/// one per downloaded revision (<c>owner/name</c> for main, <c>owner/name@revision</c> for the others).
/// </summary>
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
                string name = Path.GetFileName(cached)["models--".Length..].Replace("--", "/", StringComparison.Ordinal);
                foreach (var (revision, commit) in HubModelName.CachedRevisions(cached))
                    Add(revision == HuggingFaceHubClient.DefaultRevision ? name : HubModelName.WithRevision(name, revision), Path.Combine(cached, "snapshots", commit));
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
