using System.Diagnostics;
using Wuerstchen.Pipeline.Diagnostics;
using Wuerstchen.Pipeline.Generation;
using static Wuerstchen.Pipeline.Diagnostics.WuerstchenTelemetry;

namespace Wuerstchen.Workflows.Telemetry;

/// <summary>The attributes a generation's spans carry: what was asked for, so a slow or failed trace explains itself.</summary>
public static class GenerationTelemetry
{
    public static int Images(GenerationBatch batch) => batch.Items.Count * batch.Settings.ImagesPerPrompt;

    /// <summary>Denoising steps Stage C runs: an explicit schedule of N timesteps is N − 1 steps (the last is where it ends).</summary>
    public static int PriorSteps(GenerationSettings settings) => settings.PriorTimesteps is { Count: > 0 } t ? t.Count - 1 : settings.PriorSteps;

    public static int DecoderSteps(GenerationSettings settings) => settings.DecoderTimesteps is { Count: > 0 } t ? t.Count - 1 : settings.DecoderSteps;

    public static void Tag(Activity? span, GenerationBatch batch)
    {
        if (span is null)
            return;
        var settings = batch.Settings;
        span.SetTag(Tags.PriorModel, settings.PriorModel);
        span.SetTag(Tags.DecoderModel, settings.DecoderModel);
        span.SetTag(Tags.Width, settings.Width);
        span.SetTag(Tags.Height, settings.Height);
        span.SetTag(Tags.Prompts, batch.Items.Count);
        span.SetTag(Tags.ImagesPerPrompt, settings.ImagesPerPrompt);
        span.SetTag(Tags.BatchImages, Images(batch));
        span.SetTag(Tags.PriorSteps, PriorSteps(settings));
        span.SetTag(Tags.DecoderSteps, DecoderSteps(settings));
    }
}
