using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Wuerstchen.Models.Runtime;

namespace Wuerstchen.Pipeline.Diagnostics;

/// <summary>
/// The spans and metrics of generation and fine-tuning, on <see cref="System.Diagnostics"/> only: the hosts decide
/// where they go (OpenTelemetry, registered by <c>Wuerstchen.Workflows.Telemetry.TelemetryRegistration</c>); without a
/// listener every call here costs next to nothing. Names and units are listed in docs/operations.md.
/// </summary>
public static class WuerstchenTelemetry
{
    /// <summary>The name of both the <see cref="ActivitySource"/> and the <see cref="Meter"/>.</summary>
    public const string Name = "Wuerstchen";

    public static readonly ActivitySource Source = new(Name);

    public static readonly Meter Meter = new(Name);

    /// <summary>Span and metric attribute names.</summary>
    public static class Tags
    {
        public const string GenerationId = "wuerstchen.generation.id";
        public const string BulkJobId = "wuerstchen.bulk.id";
        public const string FineTuneRunId = "wuerstchen.finetune.id";
        public const string Stage = "wuerstchen.stage";
        public const string PriorModel = "wuerstchen.model.prior";
        public const string DecoderModel = "wuerstchen.model.decoder";
        public const string Model = "wuerstchen.model";
        public const string Width = "wuerstchen.width";
        public const string Height = "wuerstchen.height";
        public const string Prompts = "wuerstchen.prompts";
        public const string ImagesPerPrompt = "wuerstchen.images_per_prompt";
        public const string BatchImages = "wuerstchen.batch.images";
        public const string PriorSteps = "wuerstchen.steps.prior";
        public const string DecoderSteps = "wuerstchen.steps.decoder";
        public const string Reused = "wuerstchen.reused";
        public const string Outcome = "wuerstchen.outcome";
        public const string Kind = "wuerstchen.kind";
        public const string Step = "wuerstchen.finetune.step";
        public const string StepsTaken = "wuerstchen.finetune.steps_taken";
        public const string Loss = "wuerstchen.finetune.loss";
        public const string DurationSeconds = "wuerstchen.duration_s";
    }

    public static readonly Counter<long> ImagesGenerated =
        Meter.CreateCounter<long>("wuerstchen.images.generated", "{image}", "Images written by Stage A (reused images are not counted).");

    public static readonly Histogram<double> StageDuration =
        Meter.CreateHistogram<double>("wuerstchen.stage.duration", "s", "Wall time of one stage activity, by stage and outcome.");

    public static readonly Histogram<int> BatchSize =
        Meter.CreateHistogram<int>("wuerstchen.batch.size", "{image}", "Images in one generation batch (prompts × images per prompt) when Stage C starts.");

    public static readonly Histogram<double> QueueWait =
        Meter.CreateHistogram<double>("wuerstchen.queue.wait", "s",
            "From a generation's submission (or a bulk job's acceptance) to its Stage C starting; for kind=queue, from a bulk message's insertion to its intake.");

    public static readonly Counter<long> ModelLoads =
        Meter.CreateCounter<long>("wuerstchen.model.loads", "{load}", "Pipelines loaded into memory, by stage and model.");

    public static readonly Histogram<double> ModelLoadDuration =
        Meter.CreateHistogram<double>("wuerstchen.model.load.duration", "s", "Time to load one pipeline.");

    public static readonly Counter<long> ModelEvictions =
        Meter.CreateCounter<long>("wuerstchen.model.evictions", "{eviction}", "Idle pipelines unloaded to make room within the memory budget.");

    public static readonly Histogram<double> TrainingStepDuration =
        Meter.CreateHistogram<double>("wuerstchen.training.step.duration", "s", "Mean wall time of one optimiser step over a training chunk.");

    public static readonly Histogram<double> TrainingLoss =
        Meter.CreateHistogram<double>("wuerstchen.training.loss", "1", "Training loss at the end of each chunk.");

    private static readonly ConcurrentDictionary<object, Func<long>> ResidentSources = new();
    private static readonly Lazy<GpuMemory?> Gpu = new(GpuMemory.TryOpen);
    private static long _gpuPeakBytes;
    private static volatile bool _gpuObserved;

    static WuerstchenTelemetry()
    {
        Meter.CreateObservableGauge("wuerstchen.model.resident_memory", () => ResidentSources.Values.Sum(read => read()), "By",
            "Estimated bytes of the pipelines resident in this process.");
        Meter.CreateObservableGauge("wuerstchen.gpu.memory.used", ObserveGpuUsed, "By", "GPU memory in use on device 0 (NVML), where CUDA is present.");
        Meter.CreateObservableGauge("wuerstchen.gpu.memory.peak", ObserveGpuPeak, "By",
            "Most GPU memory in use seen on device 0 since the process started (sampled at every stage end and export).");
    }

    /// <summary>Reports <paramref name="read"/>'s bytes in the resident-memory gauge until the returned handle is disposed.</summary>
    public static IDisposable TrackResidentMemory(Func<long> read)
    {
        var key = new object();
        ResidentSources[key] = read;
        return new Untrack(key);
    }

    /// <summary>Turns on the GPU memory gauges (a host running on CUDA calls this once); without NVML they stay empty.</summary>
    public static void ObserveGpuMemory() => _gpuObserved = true;

    /// <summary>Samples GPU memory now, so the peak gauge sees the high point of a stage that just ended.</summary>
    public static void SampleGpuMemory()
    {
        if (_gpuObserved && Gpu.Value is { } gpu)
            RaisePeak((long)gpu.UsedBytes());
    }

    /// <summary>
    /// Starts a span for work of a workflow: a child of <paramref name="traceParent"/> (a W3C <c>traceparent</c> carried
    /// in the Durable input) when it is valid, else of a span id derived from <paramref name="rootId"/> so the work of one
    /// generation, bulk job or fine-tune still shares one trace.
    /// </summary>
    public static Activity? StartWorkflowSpan(string name, string? traceParent, string rootId, ActivityKind kind = ActivityKind.Internal) =>
        Source.HasListeners() ? Source.StartActivity(name, kind, ParentFor(traceParent, rootId)) : null;

    /// <summary>The W3C <c>traceparent</c> of <paramref name="activity"/>, to carry in a Durable input; null without one.</summary>
    public static string? TraceParentOf(Activity? activity) => activity?.IdFormat == ActivityIdFormat.W3C ? activity.Id : null;

    /// <summary>The parent context for <paramref name="rootId"/>'s work (see <see cref="StartWorkflowSpan"/>).</summary>
    public static ActivityContext ParentFor(string? traceParent, string rootId)
    {
        if (traceParent is not null && ActivityContext.TryParse(traceParent, null, out var parsed))
            return parsed;
        Span<byte> hash = stackalloc byte[32];
        System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(rootId), hash);
        return new ActivityContext(ActivityTraceId.CreateFromBytes(hash[..16]), ActivitySpanId.CreateFromBytes(hash.Slice(16, 8)), ActivityTraceFlags.Recorded);
    }

    /// <summary>Marks <paramref name="activity"/> failed with <paramref name="e"/>'s type and message.</summary>
    public static void Fail(Activity? activity, Exception e)
    {
        if (activity is null)
            return;
        activity.SetStatus(ActivityStatusCode.Error, e.Message);
        activity.AddException(e);
    }

    private static IEnumerable<Measurement<long>> ObserveGpuUsed()
    {
        if (!_gpuObserved || Gpu.Value is not { } gpu)
            yield break;
        long used = (long)gpu.UsedBytes();
        RaisePeak(used);
        yield return new Measurement<long>(used);
    }

    private static IEnumerable<Measurement<long>> ObserveGpuPeak()
    {
        if (!_gpuObserved || Gpu.Value is null)
            yield break;
        yield return new Measurement<long>(Interlocked.Read(ref _gpuPeakBytes));
    }

    private static void RaisePeak(long used)
    {
        long seen;
        while (used > (seen = Interlocked.Read(ref _gpuPeakBytes)) && Interlocked.CompareExchange(ref _gpuPeakBytes, used, seen) != seen)
        {
        }
    }

    private sealed class Untrack(object key) : IDisposable
    {
        public void Dispose() => ResidentSources.TryRemove(key, out _);
    }
}
