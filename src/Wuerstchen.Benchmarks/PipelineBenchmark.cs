using System.Diagnostics;
using Wuerstchen.Models.Imaging;
using Wuerstchen.Models.Pipelines;
using Wuerstchen.Models.Runtime;
using Wuerstchen.Models.Schedulers;
using Wuerstchen.Models.Text;
using static TorchSharp.torch;

namespace Wuerstchen.Benchmarks;

/// <summary>One batch size's figures: the median of the measured runs, in seconds.</summary>
public sealed record BatchResult
{
    public required int Batch { get; init; }

    /// <summary>Stage C: the prior pipeline (CLIP-bigG on the prompts and negatives, 29 steps with guidance 4).</summary>
    public required double StageCSeconds { get; init; }

    /// <summary>Stage B: the decoder pipeline's sampling (CLIP-H, 12 steps without guidance).</summary>
    public required double StageBSeconds { get; init; }

    /// <summary>Stage A: the VQGAN decode, conversion to 8-bit on the device and the copy of the bytes to the host.</summary>
    public required double StageASeconds { get; init; }

    /// <summary>PNG encoding of every image (in parallel, recipe embedded), on the host.</summary>
    public required double PngSeconds { get; init; }

    /// <summary>Both text encoders on the batch's prompts, timed apart for information: Stage C and Stage B include them.</summary>
    public required double TextSeconds { get; init; }

    /// <summary>(Stage C + B + A) / batch: what diffusers' per_image_s measures (its outputs stop at float tensors).</summary>
    public required double PerImageSeconds { get; init; }

    public required double PerImageWithPngSeconds { get; init; }

    /// <summary>Peak device memory above the process's start (NVML); null on a CPU.</summary>
    public double? PeakGpuGiB { get; init; }

    /// <summary>Why this batch size has no figures (e.g. it did not fit in memory); null when it ran.</summary>
    public string? Error { get; init; }

    public DiffusersComparison? Diffusers { get; init; }
}

/// <summary>diffusers' figures for the same batch, dtype and size, from the anchor's JSON, and our time over theirs.</summary>
public sealed record DiffusersComparison(double StageCSeconds, double StageBASeconds, double PerImageSeconds, double PeakGiB, double Ratio);

/// <summary>
/// The pipelines end to end, per batch size, as a bulk batch runs them: n prompts, each with its own seeded noise
/// stream; Stage C (29 steps, guidance 4), Stage B (12 steps), Stage A to 8-bit, PNG. One warm-up run with short
/// schedules first, then the measured runs, each stage between device synchronisations.
/// </summary>
public static class PipelineBenchmark
{
    private const string Prompt = "a pokemon";

    public static IEnumerable<BatchResult> Run(WuerstchenPriorPipeline prior, WuerstchenDecoderPipeline decoder, BenchmarkOptions options,
        GpuMemory? memory, Action<string> log)
    {
        foreach (int batch in options.BatchSizes)
        {
            BatchResult result;
            try
            {
                result = RunBatch(prior, decoder, options, batch, memory, log);
            }
            catch (StageOutOfMemoryException e)
            {
                log($"batch {batch}: {e.Message}");
                result = new BatchResult
                {
                    Batch = batch, StageCSeconds = double.NaN, StageBSeconds = double.NaN, StageASeconds = double.NaN, PngSeconds = double.NaN,
                    TextSeconds = double.NaN, PerImageSeconds = double.NaN, PerImageWithPngSeconds = double.NaN, Error = $"{e.Stage} out of memory",
                };
            }
            yield return result;
        }
    }

    private static BatchResult RunBatch(WuerstchenPriorPipeline prior, WuerstchenDecoderPipeline decoder, BenchmarkOptions options, int batch,
        GpuMemory? memory, Action<string> log)
    {
        var device = options.Device == "cuda" ? CUDA : CPU;
        string[] prompts = Enumerable.Repeat(Prompt, batch).ToArray();
        var priorSettings = new PriorGenerationSettings
        {
            Prompts = prompts,
            Width = options.ImageSize,
            Height = options.ImageSize,
            GuidanceScale = 4,
            Timesteps = DdpmWuerstchenScheduler.DefaultStageCTimesteps,
        };
        var decoderSettings = new DecoderGenerationSettings { Prompts = prompts, Steps = 12 };
        var recipe = new GenerationRecipe { Prompt = Prompt, Seed = 0, Width = options.ImageSize, Height = options.ImageSize, Precision = options.PrecisionName };

        var watch = Stopwatch.StartNew();
        RunOnce(prior, decoder, priorSettings with { Timesteps = [1.0, 0.5, 0.0] }, decoderSettings with { Steps = 2 }, recipe, device, batch);
        log($"batch {batch}: warm-up {watch.Elapsed.TotalSeconds:F2} s");

        var runs = new List<double[]>();
        ulong peak = 0;
        for (int repeat = 0; repeat < options.RepeatCount; repeat++)
        {
            double text = TimeText(prior.TextEncoder, decoder.TextEncoder, prompts, device);
            double[] stages;
            if (memory is not null)
            {
                (stages, ulong runPeak) = memory.Track(() => RunOnce(prior, decoder, priorSettings, decoderSettings, recipe, device, batch));
                peak = Math.Max(peak, runPeak);
            }
            else
            {
                stages = RunOnce(prior, decoder, priorSettings, decoderSettings, recipe, device, batch);
            }
            runs.Add([.. stages, text]);
            log($"batch {batch}: run {repeat + 1}: Stage C {stages[0]:F3} s, Stage B {stages[1]:F3} s, Stage A {stages[2]:F3} s, PNG {stages[3]:F3} s");
        }

        double Median(Func<double[], double> pick) => Statistics.Median(runs.Select(pick));
        double total = Median(r => r[0] + r[1] + r[2]);
        return new BatchResult
        {
            Batch = batch,
            StageCSeconds = Median(r => r[0]),
            StageBSeconds = Median(r => r[1]),
            StageASeconds = Median(r => r[2]),
            PngSeconds = Median(r => r[3]),
            TextSeconds = Median(r => r[4]),
            PerImageSeconds = total / batch,
            PerImageWithPngSeconds = Median(r => r[0] + r[1] + r[2] + r[3]) / batch,
            PeakGpuGiB = memory is null ? null : peak / (double)(1L << 30),
        };
    }

    /// <summary>One generation of the batch; returns the seconds of Stage C, B, A and PNG encoding.</summary>
    private static double[] RunOnce(WuerstchenPriorPipeline prior, WuerstchenDecoderPipeline decoder, PriorGenerationSettings priorSettings,
        DecoderGenerationSettings decoderSettings, GenerationRecipe recipe, Device device, int batch)
    {
        using var scope = NewDisposeScope();
        var seeds = Enumerable.Range(0, batch).Select(i => (ulong)i).ToArray();
        BenchmarkModels.Synchronize(device);
        var watch = Stopwatch.StartNew();

        using (var noise = new ItemwiseNoise(seeds, 1))
        {
            var embeddings = prior.Generate(priorSettings, noise);
            BenchmarkModels.Synchronize(device);
            double stageC = watch.Elapsed.TotalSeconds;

            using var decoderNoise = new ItemwiseNoise(seeds.Select(s => s + 1), 1);
            var latents = decoder.Generate(embeddings, decoderSettings, decoderNoise);
            BenchmarkModels.Synchronize(device);
            double stageB = watch.Elapsed.TotalSeconds;

            using var pixels = decoder.DecodeToBytes(latents);
            double stageA = watch.Elapsed.TotalSeconds;

            Parallel.For(0, batch, i =>
            {
                using var image = pixels[i];
                PngImages.Encode(image, recipe with { Seed = seeds[i], ImageIndex = 0 });
            });
            double png = watch.Elapsed.TotalSeconds;
            return [stageC, stageB - stageC, stageA - stageB, png - stageA];
        }
    }

    private static double TimeText(ClipPromptEncoder priorText, ClipPromptEncoder decoderText, string[] prompts, Device device)
    {
        using var scope = NewDisposeScope();
        using var inference = inference_mode();
        BenchmarkModels.Synchronize(device);
        var watch = Stopwatch.StartNew();
        priorText.Encode([.. prompts, .. Enumerable.Repeat("", prompts.Length)]);
        decoderText.Encode(prompts);
        BenchmarkModels.Synchronize(device);
        return watch.Elapsed.TotalSeconds;
    }
}

public static class Statistics
{
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0)
            return double.NaN;
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
