using System.Diagnostics;
using TorchSharp;
using Wuerstchen.Models.Pipelines;
using Wuerstchen.Models.Schedulers;
using Wuerstchen.Models.StageA;
using Wuerstchen.Models.StageB;
using Wuerstchen.Models.StageC;
using Wuerstchen.Models.Text;
using static TorchSharp.torch;

namespace Wuerstchen.Benchmarks;

/// <summary>
/// The configurations the benchmark builds, with random weights: the published ones (warp-ai/wuerstchen-prior with
/// CLIP-bigG, warp-ai/wuerstchen with CLIP-H, as diffusers' anchor builds them) or tiny ones with the same structure.
/// </summary>
public sealed record BenchmarkModels(ClipTextConfig PriorText, WuerstchenPriorConfig Prior, ClipTextConfig DecoderText,
    WuerstchenDiffNeXtConfig Decoder, PaellaVQModelConfig Vqgan)
{
    public const double ResolutionMultiple = 42.67, LatentMean = 42.0, LatentStd = 1.0, LatentDimScale = 10.67;

    public static BenchmarkModels Published { get; } = new(
        new ClipTextConfig { HiddenSize = 1280, IntermediateSize = 5120, NumHiddenLayers = 32, NumAttentionHeads = 20, HiddenAct = "gelu" },
        WuerstchenPriorConfig.Published,
        new ClipTextConfig { HiddenSize = 1024, IntermediateSize = 4096, NumHiddenLayers = 24, NumAttentionHeads = 16, HiddenAct = "gelu" },
        WuerstchenDiffNeXtConfig.Published,
        PaellaVQModelConfig.Published);

    public static BenchmarkModels Tiny { get; } = new(
        new ClipTextConfig { HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 2, NumAttentionHeads = 2, HiddenAct = "gelu" },
        new WuerstchenPriorConfig { C = 64, CCond = 32, Depth = 2, Nhead = 2 },
        new ClipTextConfig { HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 2, NumAttentionHeads = 2, HiddenAct = "gelu" },
        new WuerstchenDiffNeXtConfig { CCond = 32, CHidden = [16, 32, 32, 32], Nhead = [-1, 2, 2, 2], Blocks = [1, 1, 1, 1], ClipEmbd = 32 },
        new PaellaVQModelConfig { BottleneckBlocks = 2, EmbedDim = 16, NumVqEmbeddings = 32 });

    /// <summary>Builds both pipelines with every module allocated on the device in the run's dtype; reports each build's seconds.</summary>
    public (WuerstchenPriorPipeline Prior, WuerstchenDecoderPipeline Decoder) Build(ClipTokenizer tokenizer, InferenceOptions options, Action<string, double> built)
    {
        T Timed<T>(string what, Func<T> build)
        {
            var watch = Stopwatch.StartNew();
            var module = build();
            Synchronize(options.Device);
            built(what, watch.Elapsed.TotalSeconds);
            return module;
        }

        var (device, dtype) = (options.Device, options.DType);
        var priorText = Timed("CLIP-bigG text encoder", () => new ClipTextModel(PriorText, device, dtype));
        var prior = Timed("Stage C prior", () => new WuerstchenPrior(Prior, device, dtype));
        var decoderText = Timed("CLIP-H text encoder", () => new ClipTextModel(DecoderText, device, dtype));
        var decoder = Timed("Stage B decoder", () => new WuerstchenDiffNeXt(Decoder, device, dtype));
        var vqgan = Timed("Stage A VQGAN", () => new PaellaVQModel(Vqgan, device, dtype));
        foreach (var module in new nn.Module[] { priorText, prior, decoderText, decoder, vqgan })
            module.eval();
        return (
            new WuerstchenPriorPipeline(new ClipPromptEncoder(tokenizer, priorText, device), prior,
                new DdpmWuerstchenScheduler(new DdpmWuerstchenSchedulerConfig()), ResolutionMultiple, LatentMean, LatentStd, options),
            new WuerstchenDecoderPipeline(new ClipPromptEncoder(tokenizer, decoderText, device), decoder, vqgan,
                new DdpmWuerstchenScheduler(new DdpmWuerstchenSchedulerConfig()), LatentDimScale, options));
    }

    /// <summary>Waits for the device's queued work; a no-op on the CPU.</summary>
    public static void Synchronize(Device device)
    {
        if (device.type == DeviceType.CUDA)
            cuda.synchronize(device);
    }
}
