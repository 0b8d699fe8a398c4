using System.ComponentModel;
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
    public sealed class Settings : SamplingSettings
    {
        [CommandArgument(0, "<PROMPT>")]
        [Description("What to draw.")]
        public string Prompt { get; init; } = "";

        [CommandOption("-n|--negative <TEXT>")]
        [Description("What not to draw.")]
        public string? NegativePrompt { get; init; }

        [CommandOption("--decoder-seed <SEED>")]
        [Description("Stage B's seed. Default: seed + 1.")]
        public long? DecoderSeed { get; init; }
    }

    public override async Task<int> ExecuteAsync(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        await ModelAvailability.EnsureAsync(settings, cancellationToken);
        await using var engine = await LocalEngine.StartAsync(settings, extra: null, cancellationToken);
        var service = engine.Services.GetRequiredService<GenerationService>();
        var request = settings.ToRequest(engine) with
        {
            Prompt = settings.Prompt,
            NegativePrompt = settings.NegativePrompt,
            DecoderSeed = settings.DecoderSeed,
        };

        var outcome = await service.StartAsync(engine.Client, request, idempotencyKey: null, cancellationToken);
        if (outcome.Disposition == StartDisposition.Invalid)
            return Errors.FromValidation(outcome.Errors!, SamplingSettings.Options);

        string id = outcome.GenerationId!;
        try
        {
            var batch = (await service.GetStatusAsync(engine.Client, id, cancellationToken))!.Batch!;
            Console.WriteLine($"Generating {batch.Settings.ImagesPerPrompt} image(s) of {batch.Settings.Width}×{batch.Settings.Height}, seed {batch.Items[0].Seed}");
            var status = await GenerationProgress.FollowAsync(service, engine.Client, id, batch.Settings, cancellationToken);
            if (status.RuntimeStatus != "Completed")
            {
                await FailureDetails.WriteAsync(engine.Client, id, settings.Verbose);
                return Errors.Failed($"The generation {status.RuntimeStatus.ToLowerInvariant()}: {status.Error}");
            }

            Directory.CreateDirectory(settings.Output);
            for (int n = 0; n < status.Result!.Images.Count; n++)
            {
                string path = Path.Combine(settings.Output, $"{Slug(settings.Prompt)}-{batch.Items[0].Seed}-{n}.png");
                await using (var source = await engine.Store.OpenReadAsync(status.Result.Images[n], cancellationToken))
                await using (var target = File.Create(path))
                    await source.CopyToAsync(target, cancellationToken);
                Console.WriteLine($"Wrote {Path.GetFullPath(path)}");
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
