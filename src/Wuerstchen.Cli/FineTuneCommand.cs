using System.ComponentModel;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;
using Spectre.Console.Cli;
using Wuerstchen.Pipeline.Training;
using Wuerstchen.Workflows.Generation;
using Wuerstchen.Workflows.Training;

namespace Wuerstchen.Cli;

/// <summary>
/// <c>wuerstchen finetune FOLDER</c>: the FineTuneStageC orchestration on a captioned folder, to a new model version.
/// Resumable: the same command again (after Ctrl+C or a crash) continues from the run's last good checkpoint; the same
/// command with more <c>--steps</c> extends the finished run (the default run id does not depend on the step count).
/// </summary>
public sealed class FineTuneCommand : AsyncCommand<FineTuneCommand.Settings>
{
    public sealed class Settings : EngineSettings
    {
        [CommandArgument(0, "<FOLDER>")]
        [Description("Captioned images: metadata.jsonl (file_name, text) with the images, or name.png + name.txt pairs.")]
        public string Dataset { get; init; } = "";

        [CommandOption("--run-id <ID>")]
        [Description("Names the run. Default: derived from the folder and the training options (not --steps), so the same command resumes, and with more --steps extends it.")]
        public string? RunId { get; init; }

        [CommandOption("--recipe <NAME>")]
        [Description("blog (default: shifted t, p2 loss weight, 5% empty captions, EMA 0.9 every 100 steps, weight decay 0.01, warm-up 1000) or diffusers (uniform t, MSE, EMA 0.9999 every step). A shorter run scales the warm-up and EMA interval down (docs/fine-tuning.md).")]
        public string? Recipe { get; init; }

        [CommandOption("--steps <N>")]
        [Description("Total optimiser steps. Default 5000.")]
        public int? Steps { get; init; }

        [CommandOption("--steps-per-chunk <N>")]
        [Description("Steps per activity; each chunk ends with a checkpoint and a validation grid. Default: Wuerstchen__Training__StepsPerChunk, else 250.")]
        public int? StepsPerChunk { get; init; }

        [CommandOption("--learning-rate <LR>")]
        public double? LearningRate { get; init; }

        [CommandOption("--warmup-steps <N>")]
        [Description("Linear warm-up of the learning rate from 0. Default: the recipe's (blog 1000, diffusers 0), at most a fifth of --steps.")]
        public int? WarmupSteps { get; init; }

        [CommandOption("--ema-decay <DECAY>")]
        [Description("The EMA's decay per update, below 1. Default: the recipe's (blog 0.9, diffusers 0.9999).")]
        public double? EmaDecay { get; init; }

        [CommandOption("--ema-update-every <N>")]
        [Description("Steps between EMA updates, at most --steps. Default: the recipe's (blog 100, diffusers 1), at least ten updates per run.")]
        public int? EmaUpdateEvery { get; init; }

        [CommandOption("--caption-dropout <P>")]
        [Description("Probability per micro-batch that its captions become empty. Default: the recipe's (blog 0.05, diffusers 0).")]
        public double? CaptionDropout { get; init; }

        [CommandOption("--batch-size <N>")]
        public int? BatchSize { get; init; }

        [CommandOption("--gradient-accumulation <N>")]
        public int? GradientAccumulation { get; init; }

        [CommandOption("--resolution <PX>")]
        [Description("EfficientNet input size (short side, center crop); 768 gives the 24×24 latents of 1024-pixel images.")]
        public int? Resolution { get; init; }

        [CommandOption("--training-seed <SEED>")]
        public long? Seed { get; init; }

        [CommandOption("--effnet <NAME|DIR>")]
        [Description("The EfficientNet encoder model (see docs/fine-tuning.md). Default: Wuerstchen__Training__EffnetModel, else effnet under --models.")]
        public string? Effnet { get; init; }

        [CommandOption("--validation-prompt <TEXT>")]
        [Description("A prompt of the validation grid; repeatable. Default: four generic prompts.")]
        public string[] ValidationPrompts { get; init; } = [];

        [CommandOption("--validation-seed <SEED>")]
        [Description("The seed of each validation prompt, in order; repeatable. Default: 0, 1, 2, … .")]
        public long[] ValidationSeeds { get; init; } = [];

        [CommandOption("--validation-size <PX>")]
        [Description("Width and height of the validation images, a multiple of 128. Default 1024.")]
        public int? ValidationSize { get; init; }

        [CommandOption("--validation-prior-steps <N>")]
        public int? ValidationPriorSteps { get; init; }

        [CommandOption("--validation-decoder-steps <N>")]
        public int? ValidationDecoderSteps { get; init; }

        [CommandOption("--validation-guidance <SCALE>")]
        [Description("Stage C guidance of the validation images. Default 4.")]
        public double? ValidationGuidance { get; init; }

        [CommandOption("-o|--output <DIR>")]
        [Description("Where the latest validation grid is copied. Default ./outputs.")]
        [DefaultValue("outputs")]
        public string Output { get; init; } = "outputs";

        public override ValidationResult Validate()
        {
            var result = base.Validate();
            if (!result.Successful)
                return result;
            if (File.Exists(Dataset))
                return ValidationResult.Error($"The dataset '{Dataset}' is a file; give the folder that holds the images and their captions (metadata.jsonl, or name.png + name.txt pairs).");
            if (!Directory.Exists(Dataset))
                return ValidationResult.Error($"The dataset folder '{Dataset}' does not exist.");
            return OutputFolderError("--output", Output) ?? ValidationResult.Success();
        }
    }

    /// <summary>The request's fields as this command's options, where the names differ.</summary>
    private static readonly Dictionary<string, string> Options = new(StringComparer.Ordinal)
    {
        ["totalSteps"] = "--steps",
        ["seed"] = "--training-seed",
        ["basePrior"] = "--prior-model",
        ["effnetModel"] = "--effnet",
        ["validationPrompts"] = "--validation-prompt",
        ["validationSeeds"] = "--validation-seed",
        ["dataset"] = "FOLDER",
        ["dataset.folder"] = "FOLDER",
    };

    public override async Task<int> ExecuteAsync(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        await ModelAvailability.EnsureAsync(settings, cancellationToken);
        string dataset = Path.GetFullPath(settings.Dataset).TrimEnd(Path.DirectorySeparatorChar);
        var extra = new Dictionary<string, string?>
        {
            [$"{TrainingOptions.Section}:DatasetsRoot"] = Path.GetDirectoryName(dataset),
        };
        if (settings.Effnet is { } effnet)
        {
            bool isFolder = Directory.Exists(effnet);
            string name = isFolder ? Path.GetFullPath(effnet) : effnet;
            extra[$"{TrainingOptions.Section}:EffnetModel"] = name;
            if (isFolder)
                extra[$"Wuerstchen:Models:Paths:{name}"] = name;
        }
        await using var engine = await LocalEngine.StartAsync(settings, extra, cancellationToken);
        var service = engine.Services.GetRequiredService<FineTuneService>();
        var request = new FineTuneRequest
        {
            Dataset = new DatasetLocation { Folder = Path.GetFileName(dataset) },
            Recipe = settings.Recipe,
            BasePrior = engine.PriorModel,
            DecoderModel = engine.DecoderModel,
            TotalSteps = settings.Steps,
            StepsPerChunk = settings.StepsPerChunk,
            LearningRate = settings.LearningRate,
            WarmupSteps = settings.WarmupSteps,
            EmaDecay = settings.EmaDecay,
            EmaUpdateEvery = settings.EmaUpdateEvery,
            CaptionDropout = settings.CaptionDropout,
            BatchSize = settings.BatchSize,
            GradientAccumulation = settings.GradientAccumulation,
            Resolution = settings.Resolution,
            Seed = settings.Seed,
            Precision = settings.Precision,
            ValidationPrompts = settings.ValidationPrompts.Length > 0 ? settings.ValidationPrompts : null,
            ValidationSeeds = settings.ValidationSeeds.Length > 0 ? settings.ValidationSeeds
                : settings.ValidationPrompts.Length > 0 ? Enumerable.Range(0, settings.ValidationPrompts.Length).Select(i => (long)i).ToArray() : null,
            ValidationSize = settings.ValidationSize,
            ValidationPriorSteps = settings.ValidationPriorSteps,
            ValidationDecoderSteps = settings.ValidationDecoderSteps,
            ValidationGuidance = settings.ValidationGuidance,
        };
        request = request with { RunId = settings.RunId ?? DefaultRunId(dataset, request) };

        var outcome = await service.StartAsync(engine.Client, request, cancellationToken);
        if (outcome.Disposition == StartDisposition.Invalid)
            return Errors.FromValidation(outcome.Errors!, Options);
        if (outcome.Disposition == StartDisposition.Conflict)
            return Errors.Invalid($"run '{request.RunId}' already trains other data or another recipe; give another --run-id, or the options it was started with.");
        string id = outcome.GenerationId!;
        Console.WriteLine(outcome.Disposition == StartDisposition.Existing ? $"Fine-tuning run {request.RunId} (already running; following it)" : $"Fine-tuning run {request.RunId}");
        try
        {
            var interval = engine.Configuration.GetSection(TrainingOptions.Section).GetValue<TimeSpan?>(nameof(TrainingOptions.ProgressInterval)) ?? TimeSpan.FromSeconds(2);
            var status = await new FineTuneProgress(service, engine.Client, id, interval).FollowAsync(cancellationToken);
            if (status.LatestGrid is { } grid)
            {
                Directory.CreateDirectory(settings.Output);
                string path = Path.Combine(settings.Output, $"{request.RunId}-grid.png");
                await using (var source = await engine.Store.OpenReadAsync(grid, cancellationToken))
                await using (var target = File.Create(path))
                    await source.CopyToAsync(target, cancellationToken);
                Console.WriteLine($"Validation grid (EMA row over raw row): {Path.GetFullPath(path)}");
            }
            if (status.RuntimeStatus != "Completed" || status.Result is not { } result)
            {
                await FailureDetails.WriteAsync(engine.Client, id, settings.Verbose);
                string error = (status.Error ?? "no reason was recorded").Replace(TrainingBlobs.DatasetReport(request.RunId!), StoreLocation.Describe(engine.Configuration, TrainingBlobs.DatasetReport(request.RunId!)), StringComparison.Ordinal);
                return Errors.Failed($"the fine-tune {(status.RuntimeStatus == "Failed" ? "failed" : "stopped")}: {error}");
            }
            Console.WriteLine($"Published {result.ModelName} (EMA weights; raw: {result.RawModelName}) after {result.Steps} steps, as revision {result.Revision} ({result.RevisionName}).");
            Console.WriteLine($"Generate with: wuerstchen generate \"…\" --prior-model {result.ModelName}{SameStoreOptions(settings)}");
            return ExitCodes.Success;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await service.CancelAsync(engine.Client, id, CancellationToken.None);
            Console.Error.WriteLine("Run the same command again to resume from the last checkpoint.");
            throw;
        }
    }

    /// <summary>The options a later command needs to find the published version where this one put it.</summary>
    private static string SameStoreOptions(Settings settings)
    {
        var options = new StringBuilder();
        if (settings.ModelsRoot is { } models)
            options.Append(" --models ").Append(Path.GetFullPath(models));
        if (settings.StoreDirectory is { } store)
            options.Append(" --store ").Append(Path.GetFullPath(store));
        if (settings.StorageConnection is not null)
            options.Append(" --storage …");
        if (settings.SettingsFile is { } file)
            options.Append(" --settings ").Append(Path.GetFullPath(file));
        return options.ToString();
    }

    /// <summary>
    /// The run id the folder and the training options give: the step count, chunk size and validation grid are left
    /// out, so the same command resumes the run and, with more <c>--steps</c>, extends it.
    /// </summary>
    private static string DefaultRunId(string dataset, FineTuneRequest request)
    {
        var training = request with
        {
            RunId = null,
            TotalSteps = null,
            StepsPerChunk = null,
            ValidationPrompts = null,
            ValidationSeeds = null,
            ValidationSize = null,
            ValidationPriorSteps = null,
            ValidationDecoderSteps = null,
            ValidationGuidance = null,
            DecoderModel = null,
        };
        byte[] recipe = JsonSerializer.SerializeToUtf8Bytes(training);
        return "cli-" + Convert.ToHexStringLower(SHA256.HashData([.. Encoding.UTF8.GetBytes(dataset), .. recipe]))[..16];
    }
}
