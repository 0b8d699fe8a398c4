using System.Globalization;
using System.Text.Json;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Models;
using Wuerstchen.Pipeline.Training;
using Wuerstchen.Workflows.Bulk;

namespace Wuerstchen.Functions.Tests;

/// <summary>
/// host.json's <c>functionTimeout</c> is finite and fits the longest activity the limits allow on the slowest
/// supported GPU (infra/README.md, "functionTimeout", has the same derivation as a table). When the limits change, or
/// a per-request work budget bounds the work instead, re-point <see cref="ActivityWorstCase"/> and this test tells
/// whether host.json still fits.
/// </summary>
public sealed class FunctionTimeoutTests
{
    [Fact]
    public void TheFunctionTimeoutIsFiniteAndFitsTheLongestActivityTheLimitsAllow()
    {
        var timeout = HostFunctionTimeout();
        var required = ActivityWorstCase.RequiredTimeout();

        Assert.True(timeout > TimeSpan.Zero, "functionTimeout must be finite (not -1)");
        Assert.True(timeout >= required,
            $"functionTimeout {timeout} is shorter than the {required} the longest activity needs ({ActivityWorstCase.Describe()})");
        Assert.True(timeout <= 2 * required,
            $"functionTimeout {timeout} is more than twice the {required} needed ({ActivityWorstCase.Describe()}); a hung activity would hold its GPU needlessly long");
    }

    [Fact]
    public void TheLongestGenerationActivityGrowsWithTheLimits()
    {
        var small = ActivityWorstCase.StageB(new GenerationLimits { MaxWidth = 1024, MaxHeight = 1024, MaxImages = 1, MaxDecoderSteps = 12 }, imagesPerActivity: 1);
        var large = ActivityWorstCase.StageB(new GenerationLimits(), imagesPerActivity: 4);
        Assert.Equal(4 * 4 * 100 / 12.0, large / small, precision: 6); // pixels × images × steps
    }

    private static TimeSpan HostFunctionTimeout()
    {
        using var host = JsonDocument.Parse(File.ReadAllText(DeploymentSettingsTests.RepositoryFile("host.json")));
        string value = host.RootElement.GetProperty("functionTimeout").GetString()!;
        return value == "-1" ? TimeSpan.MinValue : TimeSpan.Parse(value, CultureInfo.InvariantCulture);
    }
}

/// <summary>
/// The longest single activity the configured limits allow, in seconds on the slowest supported GPU (an NVIDIA T4 in
/// float16), estimated from the CPU figures measured on this project's build machine (docs/performance.md) and an
/// assumed GPU speed-up. Replace the CPU figures and <see cref="GpuSpeedUp"/> with GPU figures once docs/performance.md
/// has them; replace the limits with the per-request work budget once there is one.
/// </summary>
public static class ActivityWorstCase
{
    // Seconds per unit on the 2-vCPU build machine in float32 (docs/performance.md, "This project's build machine").
    private const double StageCStepPerImage1024 = 11.84 / 2; // a guidance batch of 2 took 11.84 s
    private const double StageBStepPerImage1024 = 18.10;
    private const double DecodePerImage1024 = 17.77;
    private const double TextEncodePerPrompt = 1.16 / 2 + 0.31; // CLIP-bigG per prompt + CLIP-H

    /// <summary>Assumed: EfficientNet encoding of one training image plus its caption's CLIP-bigG embedding.</summary>
    private const double PreparePerItem = 0.5 + 1.16 / 2;

    /// <summary>Assumed: a T4 in float16 is at least 50× the build machine (about 10 TFLOP/s sustained, 15 % of its tensor-core peak, against 0.2 TFLOP/s).</summary>
    public const double GpuSpeedUp = 50;

    /// <summary>Margin for what per-pixel scaling misses (attention grows faster than the pixels at 2048²) and for slower-than-assumed kernels.</summary>
    public const double Safety = 2;

    private const double Pixels1024 = 1024.0 * 1024.0;

    public static double StageC(GenerationLimits limits, int imagesPerActivity) =>
        (StageCStepPerImage1024 * Scale(limits) * imagesPerActivity * 2 * limits.MaxPriorSteps + TextEncodePerPrompt * imagesPerActivity * 2) / GpuSpeedUp;

    public static double StageB(GenerationLimits limits, int imagesPerActivity) =>
        StageBStepPerImage1024 * Scale(limits) * imagesPerActivity * 2 * limits.MaxDecoderSteps / GpuSpeedUp;

    public static double StageA(GenerationLimits limits, int imagesPerActivity) =>
        DecodePerImage1024 * Scale(limits) * imagesPerActivity / GpuSpeedUp;

    /// <summary>A default fine-tune chunk: forward and backward (3× a forward pass) of the recipe's batch for each step.</summary>
    public static double TrainChunk(TrainingRecipe recipe, TrainingOptions options) =>
        StageCStepPerImage1024 * (recipe.Resolution * (double)recipe.Resolution / Pixels1024) * 3 * recipe.BatchSize * recipe.GradientAccumulation
        * options.StepsPerChunk / GpuSpeedUp;

    /// <summary>Preparing the largest dataset allowed: every item encoded once.</summary>
    public static double Prepare(TrainingOptions options) => PreparePerItem * options.MaxItems / GpuSpeedUp;

    public static IReadOnlyList<(string Activity, double Seconds)> All()
    {
        var limits = new GenerationLimits();
        // a request's images, or a bulk batch's prompts at the largest card's default batch
        int images = Math.Max(limits.MaxImages, DeviceProfile.ForCardMemory(141.0 * (1L << 30), "H200").BulkBatchSize);
        var training = new TrainingOptions();
        return
        [
            ("StageC", StageC(limits, images)),
            ("StageB", StageB(limits, images)),
            ("StageA", StageA(limits, images)),
            ("TrainFineTuneChunk", TrainChunk(TrainingRecipe.BlogRecipe, training)),
            ("PrepareFineTuneData", Prepare(training)),
        ];
    }

    /// <summary>The longest activity times <see cref="Safety"/>, rounded up to whole quarter hours.</summary>
    public static TimeSpan RequiredTimeout()
    {
        double seconds = All().Max(a => a.Seconds) * Safety;
        return TimeSpan.FromMinutes(Math.Ceiling(seconds / 900) * 15);
    }

    public static string Describe() =>
        string.Join(", ", All().Select(a => string.Create(CultureInfo.InvariantCulture, $"{a.Activity} {a.Seconds / 60:F1} min")));

    private static double Scale(GenerationLimits limits) => limits.MaxWidth * (double)limits.MaxHeight / Pixels1024;
}
