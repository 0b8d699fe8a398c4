using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using TorchSharp;
using Wuerstchen.Benchmarks;
using Wuerstchen.Models.Schedulers;
using Wuerstchen.Models.StageA;
using Wuerstchen.Models.StageB;
using Wuerstchen.Models.StageC;
using Wuerstchen.Models.Text;
using static TorchSharp.torch;

BenchmarkOptions options;
try
{
    options = BenchmarkOptions.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}

var report = new List<string>();
void Report(string line)
{
    Console.WriteLine(line);
    report.Add(line);
}

using var noGrad = no_grad();
Report($"# Würstchen benchmark ({(options.Tiny ? "tiny configurations" : "published configurations, random weights")}, float32)");
Report("");
Report($"- machine: {Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription}, {RuntimeInformation.ProcessArchitecture}; torch threads {get_num_threads()}; LibTorch {__version__}");
Report($"- date: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; each figure is the median of {options.Repeats} runs after one warm-up");

long matmulSize = options.Tiny ? 256 : 2048;
using var matmulA = randn(matmulSize, matmulSize);
using var matmulB = randn(matmulSize, matmulSize);
double matmulSeconds = Measure(Math.Max(5, options.Repeats), () => matmulA.matmul(matmulB));
double matmulRate = 2.0 * matmulSize * matmulSize * matmulSize / matmulSeconds;
Report($"- float32 matmul {matmulSize}³: {Gflops(matmulRate)} GFLOP/s (median of {Math.Max(5, options.Repeats)})");
Report("");
Report("| stage | size | time per call |");
Report("|---|---|---|");

var bigG = options.Tiny
    ? new ClipTextConfig { HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 2, NumAttentionHeads = 2, HiddenAct = "gelu" }
    : new ClipTextConfig { HiddenSize = 1280, IntermediateSize = 5120, NumHiddenLayers = 32, NumAttentionHeads = 20, HiddenAct = "gelu" };
var clipH = options.Tiny
    ? new ClipTextConfig { HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 2, NumAttentionHeads = 2, HiddenAct = "gelu" }
    : new ClipTextConfig { HiddenSize = 1024, IntermediateSize = 4096, NumHiddenLayers = 24, NumAttentionHeads = 16, HiddenAct = "gelu" };
double bigGSeconds = TimeTextEncoder("CLIP-bigG text encoder (2 prompts: CFG)", bigG, 2);
double clipHSeconds = TimeTextEncoder("CLIP-H text encoder (1 prompt)", clipH, 1);

var priorConfig = options.Tiny ? new WuerstchenPriorConfig { C = 64, CCond = 32, Depth = 2, Nhead = 2 } : WuerstchenPriorConfig.Published;
var decoderConfig = options.Tiny
    ? new WuerstchenDiffNeXtConfig { CCond = 32, CHidden = [16, 32, 32, 32], Nhead = [-1, 2, 2, 2], Blocks = [1, 1, 1, 1], ClipEmbd = 32 }
    : WuerstchenDiffNeXtConfig.Published;
var vqganConfig = options.Tiny ? new PaellaVQModelConfig { BottleneckBlocks = 2, EmbedDim = 16, NumVqEmbeddings = 32 } : PaellaVQModelConfig.Published;
var scheduler = new DdpmWuerstchenScheduler(new DdpmWuerstchenSchedulerConfig());
scheduler.SetTimesteps(DdpmWuerstchenScheduler.DefaultStageCTimesteps);
const double ResolutionMultiple = 42.67, LatentDimScale = 10.67;
var latentSizes = options.Sizes.ToDictionary(s => s, s => (long)Math.Ceiling(s / ResolutionMultiple));

var priorSeconds = new Dictionary<int, double>();
using (var prior = new WuerstchenPrior(priorConfig))
{
    prior.eval();
    foreach (int size in options.Sizes)
    {
        long hc = latentSizes[size];
        using var scope = NewDisposeScope();
        var x = randn(2, priorConfig.CIn, hc, hc);
        var r = full(2, 0.5f);
        var text = randn(2, 77, priorConfig.CCond);
        priorSeconds[size] = Measure(options.Repeats, () => { using var eps = prior.forward(x, r, text); return scheduler.Step(eps, r, x, zeros_like(x)); });
        double flops = PriorFlops.Forward(priorConfig, 2, hc, hc, 77);
        Report($"| Stage C step, guidance batch of 2 ({hc}×{hc} latent) | {size}² | {Seconds(priorSeconds[size])} ({Gflops(flops / priorSeconds[size])} GFLOP/s = {flops / priorSeconds[size] / matmulRate:P0} of matmul) |");
    }
}

var decoderSeconds = new Dictionary<int, double>();
using (var decoder = new WuerstchenDiffNeXt(decoderConfig))
{
    decoder.eval();
    foreach (int size in options.Sizes)
    {
        long hc = latentSizes[size], hb = (long)(hc * LatentDimScale);
        using var scope = NewDisposeScope();
        var x = randn(1, decoderConfig.CIn, hb, hb);
        var r = full(1, 0.5f);
        var effnet = randn(1, decoderConfig.EffnetEmbd, hc, hc);
        var text = randn(1, 77, decoderConfig.ClipEmbd);
        decoderSeconds[size] = Measure(options.Repeats, () => { using var eps = decoder.forward(x, r, effnet, text); return scheduler.Step(eps, r, x, zeros_like(x)); });
        Report($"| Stage B step, 1 image ({hb}×{hb} latent) | {size}² | {Seconds(decoderSeconds[size])} |");
    }
}

var decodeSeconds = new Dictionary<int, double>();
using (var vqgan = new PaellaVQModel(vqganConfig))
{
    vqgan.eval();
    foreach (int size in options.Sizes)
    {
        long hb = (long)(latentSizes[size] * LatentDimScale);
        using var scope = NewDisposeScope();
        var latents = randn(1, vqganConfig.LatentChannels, hb, hb);
        decodeSeconds[size] = Measure(options.Repeats, () => vqgan.Decode(latents * vqgan.ScaleFactor).clamp(0, 1));
        Report($"| Stage A decode, 1 image | {size}² | {Seconds(decodeSeconds[size])} |");
    }
}

Report("");
Report("Per image with the recommended settings (29 Stage C steps with guidance, 12 Stage B steps, decode, both text encoders):");
Report("");
foreach (int size in options.Sizes)
{
    double total = bigGSeconds + 29 * priorSeconds[size] + clipHSeconds + 12 * decoderSeconds[size] + decodeSeconds[size];
    Report($"- {size}²: {Seconds(total)} (Stage C {Seconds(29 * priorSeconds[size])}, Stage B {Seconds(12 * decoderSeconds[size])}, decode {Seconds(decodeSeconds[size])}, text {Seconds(bigGSeconds + clipHSeconds)})");
}
Report($"- peak resident memory: {PeakResidentBytes() / (1024.0 * 1024 * 1024):F1} GiB");

if (options.MarkdownPath is { } path)
    File.WriteAllLines(path, report);
return 0;

double TimeTextEncoder(string name, ClipTextConfig config, int batch)
{
    using var model = new ClipTextModel(config);
    model.eval();
    using var scope = NewDisposeScope();
    var ids = randint(0, config.VocabSize, [batch, 77], dtype: int64);
    var mask = ones(batch, 77, dtype: int64);
    double seconds = Measure(options.Repeats, () => model.forward(ids, mask));
    Report($"| {name} | 77 tokens | {Seconds(seconds)} |");
    return seconds;
}

static double Measure(int repeats, Func<Tensor> run)
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
    Array.Sort(times);
    return repeats % 2 == 1 ? times[repeats / 2] : (times[repeats / 2 - 1] + times[repeats / 2]) / 2;
}

static string Seconds(double seconds) => seconds >= 1
    ? string.Create(CultureInfo.InvariantCulture, $"{seconds:F2} s")
    : string.Create(CultureInfo.InvariantCulture, $"{seconds * 1000:F1} ms");

static string Gflops(double rate) => string.Create(CultureInfo.InvariantCulture, $"{rate / 1e9:F1}");

static long PeakResidentBytes()
{
    foreach (string line in File.ReadLines("/proc/self/status"))
    {
        if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            return long.Parse(line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
    }
    return 0;
}
