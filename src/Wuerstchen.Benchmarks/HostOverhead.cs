using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Wuerstchen.Models.Pipelines;
using Wuerstchen.Models.Schedulers;
using Wuerstchen.Models.StageA;
using Wuerstchen.Models.StageB;
using Wuerstchen.Models.StageC;
using Wuerstchen.Models.Text;

namespace Wuerstchen.Benchmarks;

/// <summary>
/// Host overhead per sampling step: the published depths and block structure (Stage C: 32 × [ResBlock, TimestepBlock,
/// AttnBlock] with 24 heads; Stage B: blocks 4/4/14/4 with the published level patterns and heads) at tiny widths and a
/// small image, on the CPU with one torch thread, so that a step's time is almost all the cost of issuing its
/// operations, not of computing them. It runs the real pipeline classes (29 Stage C steps with guidance 4, 12 Stage B
/// steps) and reports per stage: the median CPU time of the sampling thread between consecutive steps, the process's CPU
/// time for the whole stage divided by its steps (which also carries the text encoding, the noise and the schedule
/// set-up, on any thread), and the same two in wall-clock time. CPU time is the figure to compare on a shared machine:
/// wall-clock time there mostly measures the other processes.
/// </summary>
public static class HostOverhead
{
    public const int Size = 128;
    public const int StageCSteps = 29;
    public const int StageBSteps = 12;

    public static WuerstchenPriorConfig PriorConfig { get; } = WuerstchenPriorConfig.Published with { C = 48, CCond = 32 };

    public static WuerstchenDiffNeXtConfig DecoderConfig { get; } = WuerstchenDiffNeXtConfig.Published with
    {
        CHidden = [16, 40, 40, 40],
        CCond = 32,
        ClipEmbd = 32,
    };

    private static ClipTextConfig TextConfig { get; } = new() { HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 2, NumAttentionHeads = 2, HiddenAct = "gelu" };

    /// <summary>Runs <paramref name="repeats"/> generations after a warm-up and prints one JSON line per figure set.</summary>
    public static int Run(string tokenizerDirectory, int repeats, TextWriter output)
    {
        var tokenizer = ClipTokenizer.FromDirectory(tokenizerDirectory);
        var options = new InferenceOptions();
        using var prior = new WuerstchenPriorPipeline(new ClipPromptEncoder(tokenizer, new ClipTextModel(TextConfig), options.Device),
            new WuerstchenPrior(PriorConfig), new DdpmWuerstchenScheduler(new DdpmWuerstchenSchedulerConfig()), 42.67, 42.0, 1.0, options);
        using var decoder = new WuerstchenDecoderPipeline(new ClipPromptEncoder(tokenizer, new ClipTextModel(TextConfig), options.Device),
            new WuerstchenDiffNeXt(DecoderConfig), new PaellaVQModel(new PaellaVQModelConfig { EmbedDim = 16, BottleneckBlocks = 1, NumVqEmbeddings = 32 }),
            new DdpmWuerstchenScheduler(new DdpmWuerstchenSchedulerConfig()), 10.67, options);
        prior.Prior.eval();
        decoder.Decoder.eval();

        for (int run = 0; run <= repeats; run++)
        {
            using var priorNoise = new SeededNoise((ulong)run);
            var stageC = TimeStage(onStep => prior.Generate(new PriorGenerationSettings
            {
                Prompts = ["a host overhead benchmark"],
                Width = Size,
                Height = Size,
                GuidanceScale = 4,
                Timesteps = DdpmWuerstchenScheduler.DefaultStageCTimesteps,
            }, priorNoise, onStep));
            using var embeddings = stageC.Result;
            using var decoderNoise = new SeededNoise((ulong)run + 1);
            var stageB = TimeStage(onStep => decoder.Generate(embeddings, new DecoderGenerationSettings
            {
                Prompts = ["a host overhead benchmark"],
                Steps = StageBSteps,
            }, decoderNoise, onStep));
            stageB.Result.Dispose();
            if (run == 0)
                continue; // warm-up
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{{\"run\": {run}, \"stageCStepCpuMs\": {stageC.StepCpuMs:F3}, \"stageCPerStepCpuMs\": {stageC.CpuMs / StageCSteps:F3}, " +
                $"\"stageBStepCpuMs\": {stageB.StepCpuMs:F3}, \"stageBPerStepCpuMs\": {stageB.CpuMs / StageBSteps:F3}, " +
                $"\"stageCStepMs\": {stageC.StepMs:F3}, \"stageCPerStepMs\": {stageC.WallMs / StageCSteps:F3}, " +
                $"\"stageBStepMs\": {stageB.StepMs:F3}, \"stageBPerStepMs\": {stageB.WallMs / StageBSteps:F3}}}"));
        }
        return 0;
    }

    private sealed record StageTiming(TorchSharp.torch.Tensor Result, double StepCpuMs, double CpuMs, double StepMs, double WallMs);

    private static StageTiming TimeStage(Func<Action<SamplingStep>, TorchSharp.torch.Tensor> generate)
    {
        var wallStamps = new List<double>();
        var cpuStamps = new List<double>();
        var process = Process.GetCurrentProcess();
        process.Refresh();
        var processCpu = process.TotalProcessorTime;
        var watch = Stopwatch.StartNew();
        var result = generate(_ =>
        {
            wallStamps.Add(watch.Elapsed.TotalMilliseconds);
            cpuStamps.Add(ThreadCpuMilliseconds());
        });
        double wall = watch.Elapsed.TotalMilliseconds;
        process.Refresh();
        double cpu = (process.TotalProcessorTime - processCpu).TotalMilliseconds;
        return new StageTiming(result, MedianInterval(cpuStamps), cpu, MedianInterval(wallStamps), wall);
    }

    private static double MedianInterval(List<double> stamps)
    {
        var intervals = stamps.Zip(stamps.Skip(1), (a, b) => b - a).Order().ToArray();
        return intervals.Length == 0 ? double.NaN : intervals.Length % 2 == 1
            ? intervals[intervals.Length / 2]
            : (intervals[intervals.Length / 2 - 1] + intervals[intervals.Length / 2]) / 2;
    }

    /// <summary>CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID), in milliseconds.</summary>
    private static double ThreadCpuMilliseconds()
    {
        if (clock_gettime(3, out var time) != 0)
            throw new InvalidOperationException("clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed.");
        return time.Seconds * 1e3 + time.Nanoseconds / 1e6;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int clock_gettime(int clock, out Timespec time);
}
