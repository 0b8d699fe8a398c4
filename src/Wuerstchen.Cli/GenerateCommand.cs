using System.ComponentModel;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;
using Spectre.Console.Cli;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Workflows.Generation;

namespace Wuerstchen.Cli;

/// <summary><c>wuerstchen generate PROMPT</c>: one prompt through the GenerateImage orchestration to PNG files.</summary>
public sealed class GenerateCommand : AsyncCommand<GenerateCommand.Settings>
{
    public sealed class Settings : EngineSettings
    {
        [CommandArgument(0, "<PROMPT>")]
        [Description("What to draw.")]
        public string Prompt { get; init; } = "";

        [CommandOption("-n|--negative <TEXT>")]
        [Description("What not to draw.")]
        public string? NegativePrompt { get; init; }

        [CommandOption("-W|--width <PX>")]
        [Description("Width in pixels, a multiple of 128. Default 1024.")]
        public int? Width { get; init; }

        [CommandOption("-H|--height <PX>")]
        [Description("Height in pixels, a multiple of 128. Default 1024.")]
        public int? Height { get; init; }

        [CommandOption("-i|--images <N>")]
        [Description("Images of the prompt. Default 1.")]
        public int? Images { get; init; }

        [CommandOption("-s|--seed <SEED>")]
        [Description("0 … 2^53−1; random when absent (printed, and embedded in the PNG).")]
        public long? Seed { get; init; }

        [CommandOption("--decoder-seed <SEED>")]
        [Description("Stage B's seed. Default: seed + 1.")]
        public long? DecoderSeed { get; init; }

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
    }

    public override async Task<int> ExecuteAsync(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        IReadOnlyList<double>? timesteps;
        try
        {
            timesteps = settings.PriorTimesteps?.Split(',').Select(t => double.Parse(t, NumberStyles.Float, CultureInfo.InvariantCulture)).ToArray();
        }
        catch (FormatException)
        {
            return Errors.Invalid($"--prior-timesteps '{settings.PriorTimesteps}' is not a comma-separated list of numbers.");
        }

        await ModelAvailability.EnsureAsync(settings, cancellationToken);
        await using var engine = await LocalEngine.StartAsync(settings);
        var service = engine.Services.GetRequiredService<GenerationService>();
        var request = new GenerationRequest
        {
            Prompt = settings.Prompt,
            NegativePrompt = settings.NegativePrompt,
            Width = settings.Width,
            Height = settings.Height,
            Images = settings.Images,
            Seed = settings.Seed,
            DecoderSeed = settings.DecoderSeed,
            PriorSteps = settings.PriorSteps,
            PriorTimesteps = timesteps,
            PriorGuidance = settings.PriorGuidance,
            DecoderSteps = settings.DecoderSteps,
            DecoderGuidance = settings.DecoderGuidance,
            PriorModel = engine.PriorModel,
            DecoderModel = engine.DecoderModel,
        };

        var outcome = await service.StartAsync(engine.Client, request, idempotencyKey: null, cancellationToken);
        if (outcome.Disposition == StartDisposition.Invalid)
            return Errors.FromValidation(outcome.Errors!);

        string id = outcome.GenerationId!;
        try
        {
            var batch = (await service.GetStatusAsync(engine.Client, id, cancellationToken))!.Batch!;
            AnsiConsole.MarkupLineInterpolated($"Generating {batch.Settings.ImagesPerPrompt} image(s) of {batch.Settings.Width}×{batch.Settings.Height}, seed {batch.Items[0].Seed}");
            var status = await GenerationProgress.FollowAsync(service, engine.Client, id, batch.Settings, cancellationToken);
            if (status.RuntimeStatus != "Completed")
                return Errors.Failed($"The generation {status.RuntimeStatus.ToLowerInvariant()}: {status.Error}");

            Directory.CreateDirectory(settings.Output);
            for (int n = 0; n < status.Result!.Images.Count; n++)
            {
                string path = Path.Combine(settings.Output, $"{Slug(settings.Prompt)}-{batch.Items[0].Seed}-{n}.png");
                await using (var source = await engine.Store.OpenReadAsync(status.Result.Images[n], cancellationToken))
                await using (var target = File.Create(path))
                    await source.CopyToAsync(target, cancellationToken);
                AnsiConsole.WriteLine($"Wrote {Path.GetFullPath(path)}");
            }
            return ExitCodes.Success;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await service.CancelAsync(engine.Client, id, CancellationToken.None);
            throw;
        }
    }

    /// <summary>A file-name-safe short form of the prompt.</summary>
    internal static string Slug(string prompt)
    {
        var slug = new StringBuilder();
        foreach (char c in prompt.ToLowerInvariant())
        {
            if (char.IsAsciiLetterOrDigit(c))
                slug.Append(c);
            else if (slug.Length > 0 && slug[^1] != '-')
                slug.Append('-');
            if (slug.Length == 48)
                break;
        }
        string result = slug.ToString().Trim('-');
        return result.Length == 0 ? "image" : result;
    }
}
