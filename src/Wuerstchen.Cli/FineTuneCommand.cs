using System.ComponentModel;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;
using Spectre.Console.Cli;
using Wuerstchen.Pipeline.Training;
using Wuerstchen.Workflows.Generation;
using Wuerstchen.Workflows.Training;

namespace Wuerstchen.Cli;

/// <summary>
/// <c>wuerstchen finetune FOLDER</c>: the FineTuneStageC orchestration on a captioned folder, to a new model version.
/// Resumable: the same command again (after Ctrl+C or a crash) continues from the run's last good checkpoint.
/// </summary>
public sealed class FineTuneCommand : AsyncCommand<FineTuneCommand.Settings>
{
    public sealed class Settings : EngineSettings
    {
        [CommandArgument(0, "<FOLDER>")]
        [Description("Captioned images: metadata.jsonl (file_name, text) with the images, or name.png + name.txt pairs.")]
        public string Dataset { get; init; } = "";

        [CommandOption("--run-id <ID>")]
        [Description("Names the run. Default: derived from the folder and the options, so the same command resumes.")]
        public string? RunId { get; init; }

        [CommandOption("--recipe <NAME>")]
        [Description("blog (default: shifted t, p2 loss weight, 5% empty captions, EMA 0.9 every 100 steps, weight decay 0.01, warm-up) or diffusers (uniform t, MSE, EMA 0.9999 every step).")]
        public string? Recipe { get; init; }

        [CommandOption("--steps <N>")]
        [Description("Total optimiser steps.")]
        public int? Steps { get; init; }

        [CommandOption("--steps-per-chunk <N>")]
        [Description("Steps per activity; each chunk ends with a checkpoint and a validation grid.")]
        public int? StepsPerChunk { get; init; }

        [CommandOption("--learning-rate <LR>")]
        public double? LearningRate { get; init; }

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
        [Description("The EfficientNet encoder model (see docs/fine-tuning.md). Default: effnet under --models.")]
        public string? Effnet { get; init; }

        [CommandOption("--validation-prompt <TEXT>")]
        [Description("A prompt of the validation grid; repeatable. Default: four generic prompts.")]
        public string[] ValidationPrompts { get; init; } = [];

        [CommandOption("--validation-size <PX>")]
        [Description("Width and height of the validation images, a multiple of 128. Default 1024.")]
        public int? ValidationSize { get; init; }

        [CommandOption("--validation-prior-steps <N>")]
        public int? ValidationPriorSteps { get; init; }

        [CommandOption("--validation-decoder-steps <N>")]
        public int? ValidationDecoderSteps { get; init; }

        [CommandOption("-o|--output <DIR>")]
        [Description("Where the latest validation grid is copied. Default ./outputs.")]
        [DefaultValue("outputs")]
        public string Output { get; init; } = "outputs";

        public override ValidationResult Validate()
        {
            var result = base.Validate();
            if (!result.Successful)
                return result;
            return Directory.Exists(Dataset) ? ValidationResult.Success() : ValidationResult.Error($"The dataset folder '{Dataset}' does not exist.");
        }
    }

    public override async Task<int> ExecuteAsync(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        await ModelAvailability.EnsureAsync(settings, cancellationToken);
        string dataset = Path.GetFullPath(settings.Dataset).TrimEnd(Path.DirectorySeparatorChar);
        var extra = new Dictionary<string, string?>
        {
            ["Wuerstchen:Training:DatasetsRoot"] = Path.GetDirectoryName(dataset),
        };
        if (settings.Effnet is { } effnet)
        {
            bool isFolder = Directory.Exists(effnet);
            string name = isFolder ? Path.GetFullPath(effnet) : effnet;
            extra["Wuerstchen:Training:EffnetModel"] = name;
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
            BatchSize = settings.BatchSize,
            GradientAccumulation = settings.GradientAccumulation,
            Resolution = settings.Resolution,
            Seed = settings.Seed,
            Precision = settings.Precision,
            ValidationPrompts = settings.ValidationPrompts.Length > 0 ? settings.ValidationPrompts : null,
            ValidationSeeds = settings.ValidationPrompts.Length > 0 ? Enumerable.Range(0, settings.ValidationPrompts.Length).Select(i => (long)i).ToArray() : null,
            ValidationSize = settings.ValidationSize,
            ValidationPriorSteps = settings.ValidationPriorSteps,
            ValidationDecoderSteps = settings.ValidationDecoderSteps,
        };
        request = request with { RunId = settings.RunId ?? DefaultRunId(dataset, request) };

        var outcome = await service.StartAsync(engine.Client, request, cancellationToken);
        if (outcome.Disposition == StartDisposition.Invalid)
            return Errors.FromValidation(outcome.Errors!);
        if (outcome.Disposition == StartDisposition.Conflict)
            return Errors.Invalid($"run id '{request.RunId}' already belongs to other training; choose another --run-id.");
        string id = outcome.GenerationId!;
        Console.WriteLine($"Fine-tuning run {request.RunId}");
        try
        {
            var status = await FollowAsync(service, engine, id, cancellationToken);
            if (status.LatestGrid is { } grid)
            {
                Directory.CreateDirectory(settings.Output);
                string path = Path.Combine(settings.Output, $"{request.RunId}-grid.png");
                await using (var source = await engine.Store.OpenReadAsync(grid, cancellationToken))
                await using (var target = File.Create(path))
                    await source.CopyToAsync(target, cancellationToken);
                Console.WriteLine($"Validation grid (EMA row over raw row): {Path.GetFullPath(path)}");
            }
            if (status.RuntimeStatus != "Completed" || status.Result is null)
                return Errors.Failed($"The fine-tune {status.RuntimeStatus.ToLowerInvariant()}: {status.Error}");
            Console.WriteLine($"Published {status.Result.ModelName} (EMA) and {status.Result.RawModelName} (raw) after {status.Result.Steps} steps; " +
                              $"generate with --prior-model {status.Result.ModelName} --models {settings.ModelsRoot ?? LocalEngine.DefaultModelsRoot()} --store {settings.StoreDirectory ?? LocalEngine.DefaultStore()}");
            return ExitCodes.Success;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await service.CancelAsync(engine.Client, id, CancellationToken.None);
            Console.Error.WriteLine("Run the same command again to resume from the last checkpoint.");
            throw;
        }
    }

    private static async Task<FineTuneStatus> FollowAsync(FineTuneService service, LocalEngine engine, string id, CancellationToken cancellationToken)
    {
        string? last = null;
        while (true)
        {
            var status = await service.GetStatusAsync(engine.Client, id, cancellationToken)
                         ?? throw new InvalidOperationException($"The fine-tune {id} disappeared.");
            string line = status.Loss is { } loss
                ? FormattableString.Invariant($"{status.Phase}: step {status.Step}/{status.TotalSteps}, loss {loss:F4}, lr {status.LearningRate:E2}")
                : $"{status.Phase ?? status.RuntimeStatus}: step {status.Step}/{status.TotalSteps}";
            if (line != last)
                Console.WriteLine(last = line);
            if (status.RuntimeStatus is "Completed" or "Failed" or "Terminated")
            {
                foreach (var problem in status.DatasetProblems)
                    Console.WriteLine($"  skipped {problem.Name}: {problem.Reason}");
                return status;
            }
            await Task.Delay(TimeSpan.FromMilliseconds(500), cancellationToken);
        }
    }

    private static string DefaultRunId(string dataset, FineTuneRequest request)
    {
        byte[] recipe = JsonSerializer.SerializeToUtf8Bytes(request with { RunId = null });
        return "cli-" + Convert.ToHexStringLower(SHA256.HashData([.. Encoding.UTF8.GetBytes(dataset), .. recipe]))[..16];
    }
}
