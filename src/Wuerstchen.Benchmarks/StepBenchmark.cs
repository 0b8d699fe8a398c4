using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Wuerstchen.Models.Schedulers;
using Wuerstchen.Models.StageA;
using Wuerstchen.Models.StageB;
using Wuerstchen.Models.StageC;
using Wuerstchen.Models.Text;
using static TorchSharp.torch;

namespace Wuerstchen.Benchmarks;

/// <summary>
/// CPU figures per call at full size, one model resident at a time (float32): each text encoder, a Stage C step (guidance
/// batch of 2), a Stage B step, a Stage A decode, and the per-image estimate with the recommended settings. Stage C's
/// achieved FLOP rate is given against the best of several matrix products on Stage C's own largest Linear shapes,
/// timed in the same run, and its FLOP count is checked against the layer shapes of the model as built.
/// </summary>
public static class StepBenchmark
{
    public static void Run(BenchmarkOptions options, Action<string> report)
    {
        var models = options.Tiny ? BenchmarkModels.Tiny : BenchmarkModels.Published;
        int repeats = options.RepeatCount;
        int matmulRuns = Math.Max(5, repeats);
        report($"# Würstchen benchmark, one step per stage ({(options.Tiny ? "tiny configurations" : "published configurations, random weights")}, float32)");
        report("");
        report($"- machine: {Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription}, {RuntimeInformation.ProcessArchitecture}; torch threads {get_num_threads()}; {Models.Runtime.TorchRuntime.Describe()}");
        report($"- date: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; each time is the median of {repeats} runs after one warm-up; matmul rates are the best of {matmulRuns}");

        var latentSizes = options.Sizes.ToDictionary(s => s, s => (long)Math.Ceiling(s / BenchmarkModels.ResolutionMultiple));
        var reference = new Dictionary<int, double>();
        foreach (int size in options.Sizes)
        {
            long tokens = 2 * latentSizes[size] * latentSizes[size];
            long c = models.Prior.C;
            double up = BestMatmulRate(tokens, c, 4 * c, matmulRuns), down = BestMatmulRate(tokens, 4 * c, c, matmulRuns);
            reference[size] = Math.Max(up, down);
            report($"- float32 matmul on Stage C's MLP shapes at {size}² ({tokens}×{c}·{c}×{4 * c}: {Gflops(up)}; {tokens}×{4 * c}·{4 * c}×{c}: {Gflops(down)} GFLOP/s): reference {Gflops(reference[size])} GFLOP/s");
        }
        report("");
        report("| stage | size | time per call |");
        report("|---|---|---|");

        double bigG = TimeTextEncoder("CLIP-bigG text encoder (2 prompts: guidance)", models.PriorText, 2, repeats, report);
        double clipH = TimeTextEncoder("CLIP-H text encoder (1 prompt)", models.DecoderText, 1, repeats, report);
        var scheduler = new DdpmWuerstchenScheduler(new DdpmWuerstchenSchedulerConfig());
        scheduler.SetTimesteps(DdpmWuerstchenScheduler.DefaultStageCTimesteps);
        using var inference = inference_mode();

        var priorSeconds = new Dictionary<int, double>();
        using (var prior = new WuerstchenPrior(models.Prior))
        {
            prior.eval();
            foreach (int size in options.Sizes)
            {
                long hc = latentSizes[size];
                using var scope = NewDisposeScope();
                var x = randn(2, models.Prior.CIn, hc, hc);
                var condition = prior.MapCondition(randn(2, 77, models.Prior.CCond));
                using var schedule = scheduler.Prepare(2, 4, CPU);
                var noise = zeros_like(x);
                priorSeconds[size] = Measure(repeats, () => schedule.Step(0, prior.Forward(x, schedule.Ratio[0], condition), x, noise));
                double flops = PriorFlops.Step(models.Prior, 2, hc, hc, 77);
                double checkedFlops = PriorFlops.FromParameters(prior.named_parameters().Select(p => (p.name, p.parameter.shape)), 2, hc, hc, 77)
                                      - PriorFlops.Condition(models.Prior, 2, 77);
                if (Math.Abs(checkedFlops - flops) > 1e-9 * flops)
                    throw new InvalidOperationException($"Stage C FLOPs per step: the formula gives {flops:E4}, the model's layer shapes {checkedFlops:E4}.");
                double rate = flops / priorSeconds[size];
                report($"| Stage C step, guidance batch of 2 ({hc}×{hc} latent; {flops / 1e9:F1} GFLOP, layer shapes agree) | {size}² | " +
                       $"{Seconds(priorSeconds[size])} ({Gflops(rate)} GFLOP/s = {rate / reference[size]:P0} of the matmul reference) |");
            }
        }

        var decoderSeconds = new Dictionary<int, double>();
        using (var decoder = new WuerstchenDiffNeXt(models.Decoder))
        {
            decoder.eval();
            foreach (int size in options.Sizes)
            {
                long hc = latentSizes[size], hb = (long)(hc * BenchmarkModels.LatentDimScale);
                using var scope = NewDisposeScope();
                var x = randn(1, models.Decoder.CIn, hb, hb);
                var condition = decoder.MapCondition(randn(1, models.Decoder.EffnetEmbd, hc, hc), randn(1, 77, models.Decoder.ClipEmbd), hb, hb);
                using var schedule = scheduler.Prepare(1, 4, CPU);
                var noise = zeros_like(x);
                decoderSeconds[size] = Measure(repeats, () => schedule.Step(0, decoder.Forward(x, schedule.Ratio[0], condition), x, noise));
                report($"| Stage B step, 1 image ({hb}×{hb} latent) | {size}² | {Seconds(decoderSeconds[size])} |");
            }
        }

        var decodeSeconds = new Dictionary<int, double>();
        using (var vqgan = new PaellaVQModel(models.Vqgan))
        {
            vqgan.eval();
            foreach (int size in options.Sizes)
            {
                long hb = (long)(latentSizes[size] * BenchmarkModels.LatentDimScale);
                using var scope = NewDisposeScope();
                var latents = randn(1, models.Vqgan.LatentChannels, hb, hb);
                decodeSeconds[size] = Measure(repeats, () => vqgan.Decode(latents * vqgan.ScaleFactor).clamp(0, 1));
                report($"| Stage A decode, 1 image | {size}² | {Seconds(decodeSeconds[size])} |");
            }
        }

        report("");
        report("Per image with the recommended settings (29 Stage C steps with guidance, 12 Stage B steps, decode, both text encoders):");
        report("");
        foreach (int size in options.Sizes)
        {
            double total = bigG + 29 * priorSeconds[size] + clipH + 12 * decoderSeconds[size] + decodeSeconds[size];
            report($"- {size}²: {Seconds(total)} (Stage C {Seconds(29 * priorSeconds[size])}, Stage B {Seconds(12 * decoderSeconds[size])}, decode {Seconds(decodeSeconds[size])}, text {Seconds(bigG + clipH)})");
        }
        report($"- peak resident memory: {PeakResidentBytes() / (1024.0 * 1024 * 1024):F1} GiB");
    }

    /// <summary>The best rate of <paramref name="runs"/> timed <c>linear</c> calls of (m × k) by (k × n), inputs drawn outside the timing.</summary>
    private static double BestMatmulRate(long m, long k, long n, int runs)
    {
        using var scope = NewDisposeScope();
        using var inference = inference_mode();
        var input = randn(m, k);
        var weight = randn(n, k);
        nn.functional.linear(input, weight).Dispose();
        double best = double.MaxValue;
        for (int i = 0; i < runs; i++)
        {
            var watch = Stopwatch.StartNew();
            nn.functional.linear(input, weight).Dispose();
            best = Math.Min(best, watch.Elapsed.TotalSeconds);
        }
        return 2.0 * m * k * n / best;
    }

    private static double TimeTextEncoder(string name, ClipTextConfig config, int batch, int repeats, Action<string> report)
    {
        using var model = new ClipTextModel(config);
        model.eval();
        using var scope = NewDisposeScope();
        using var inference = inference_mode();
        var ids = randint(0, config.VocabSize, [batch, 77], dtype: int64);
        var mask = ones(batch, 77, dtype: int64);
        double seconds = Measure(repeats, () => model.forward(ids, mask));
        report($"| {name} | 77 tokens | {Seconds(seconds)} |");
        return seconds;
    }

    private static double Measure(int repeats, Func<Tensor> run)
    {
        run().Dispose();
        var times = new double[repeats];
        for (int i = 0; i < repeats; i++)
        {
            var watch = Stopwatch.StartNew();
            using (var scope = NewDisposeScope())
                run();
            times[i] = watch.Elapsed.TotalSeconds;
        }
        return Statistics.Median(times);
    }

    private static string Seconds(double seconds) => seconds >= 1
        ? string.Create(CultureInfo.InvariantCulture, $"{seconds:F2} s")
        : string.Create(CultureInfo.InvariantCulture, $"{seconds * 1000:F1} ms");

    private static string Gflops(double rate) => string.Create(CultureInfo.InvariantCulture, $"{rate / 1e9:F1}");

    private static long PeakResidentBytes()
    {
        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        }
        return 0;
    }
}
