using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TorchSharp;
using Wuerstchen.Models.Loading;
using Wuerstchen.Models.Pipelines;
using Wuerstchen.Pipeline.Diagnostics;

namespace Wuerstchen.Pipeline.Models;

/// <summary>
/// Keeps the pipelines resident within a memory budget: each model loads on first use and stays until room is needed
/// for another, when the least recently used idle one is unloaded (<see cref="ModelOptions.MemoryBudget"/>; by default
/// a share of the device's memory). A model in use, or with callers waiting for it, is never unloaded; when everything
/// resident is in use a model loads over the budget, and the excess is unloaded as models go idle. The most recently
/// used model always stays, so a budget below one model means one model at a time. Each pipeline is used by one caller
/// at a time (its scheduler holds per-run state; on a GPU, one stage at a time is what fits anyway).
/// </summary>
public sealed partial class ModelHost : IDisposable
{
    private const string PriorStage = "Stage C";
    private const string DecoderStage = "Stage B/A";

    private readonly ModelLocator _locator;
    private readonly ILogger<ModelHost> _logger;
    private readonly object _lock = new();
    private readonly Dictionary<string, Resident> _resident = new(StringComparer.Ordinal);
    private long _clock;
    private long _residentBytes;
    private bool _disposed;
    private readonly IDisposable _residentGauge;

    public ModelHost(ModelLocator locator, IOptions<ModelOptions> options, ILogger<ModelHost> logger)
    {
        _locator = locator;
        _logger = logger;
        Inference = InferenceFrom(options.Value);
        BudgetBytes = options.Value.MemoryBudgetBytes ?? ModelFootprint.DefaultBudgetBytes(options.Value.Device);
        _residentGauge = WuerstchenTelemetry.TrackResidentMemory(() => Interlocked.Read(ref _residentBytes));
        if (options.Value.Device == "cuda")
            WuerstchenTelemetry.ObserveGpuMemory();
    }

    public InferenceOptions Inference { get; }

    /// <summary>The memory resident pipelines may take, in bytes.</summary>
    public long BudgetBytes { get; }

    /// <summary>Runs <paramref name="work"/> with the Stage C pipeline of model <paramref name="name"/>.</summary>
    public Task<T> WithPriorAsync<T>(string name, Func<WuerstchenPriorPipeline, T> work, CancellationToken cancellationToken) =>
        UseAsync(PriorStage, name, path => WuerstchenPriorPipeline.FromRepository(ModelRepository.Open(path), Inference), work, cancellationToken);

    /// <summary>Runs <paramref name="work"/> with the Stage B/A pipeline of model <paramref name="name"/>.</summary>
    public Task<T> WithDecoderAsync<T>(string name, Func<WuerstchenDecoderPipeline, T> work, CancellationToken cancellationToken) =>
        UseAsync(DecoderStage, name, path => WuerstchenDecoderPipeline.FromRepository(ModelRepository.Open(path), Inference), work, cancellationToken);

    /// <summary>Whether the Stage C pipeline of model <paramref name="name"/> is loaded (for health checks: loads nothing).</summary>
    public bool IsPriorResident(string name) => IsLoaded(PriorStage, name);

    /// <summary>Whether the Stage B/A pipeline of model <paramref name="name"/> is loaded (for health checks: loads nothing).</summary>
    public bool IsDecoderResident(string name) => IsLoaded(DecoderStage, name);

    private bool IsLoaded(string stage, string name)
    {
        lock (_lock)
            return _resident.TryGetValue(Key(stage, name), out var entry) && entry.Pipeline is not null;
    }

    private static string Key(string stage, string name) => stage + "|" + name;

    private async Task<TResult> UseAsync<TPipeline, TResult>(string stage, string name, Func<string, TPipeline> load, Func<TPipeline, TResult> work,
        CancellationToken cancellationToken) where TPipeline : class, IDisposable
    {
        Resident entry;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            string key = Key(stage, name);
            if (!_resident.TryGetValue(key, out entry!))
                _resident[key] = entry = new Resident(key, stage, name);
            entry.Users++;
            entry.LastUsed = ++_clock;
        }
        try
        {
            await entry.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                // A load or a model call holds its thread for seconds to minutes: it gets a thread of its own, so the
                // pool stays free for the async work beside it (progress writes, cancel checks, the Durable client),
                // which blocked pool threads would otherwise delay on a small machine until the pool grows.
                return await Task.Factory.StartNew(() =>
                {
                    entry.Pipeline ??= Load(entry, load);
                    return work((TPipeline)entry.Pipeline);
                }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).ConfigureAwait(false);
            }
            finally
            {
                entry.Gate.Release();
            }
        }
        finally
        {
            List<Resident> evicted;
            lock (_lock)
            {
                entry.Users--;
                entry.LastUsed = ++_clock;
                if (entry.Pipeline is null && entry.Users == 0)
                    _resident.Remove(entry.Key); // a failed load is forgotten, so the next call tries again
                evicted = EvictIdle(0, except: entry);
            }
            Unload(evicted);
        }
    }

    /// <summary>Loads the pipeline (the caller holds its gate), first unloading idle models until it fits the budget.</summary>
    private IDisposable Load<TPipeline>(Resident entry, Func<string, TPipeline> load) where TPipeline : IDisposable
    {
        string path;
        long bytes;
        try
        {
            path = _locator.Resolve(entry.Name);
            bytes = ModelFootprint.EstimateBytes(path, Inference.DType);
        }
        catch (Exception e) when (IsPermanentLoadFailure(e))
        {
            throw new ModelNotLoadableException(entry.Stage, entry.Name, e);
        }
        List<Resident> evicted;
        long residentAfter;
        lock (_lock)
        {
            evicted = EvictIdle(bytes, except: entry);
            residentAfter = _residentBytes + bytes;
        }
        Unload(evicted);
        if (residentAfter > BudgetBytes)
            LogOverBudget(entry.Stage, entry.Name, ModelFootprint.Format(bytes), ModelFootprint.Format(residentAfter), ModelFootprint.Format(BudgetBytes));

        var watch = System.Diagnostics.Stopwatch.StartNew();
        TPipeline pipeline;
        try
        {
            pipeline = load(path);
        }
        catch (Exception e) when (IsPermanentLoadFailure(e))
        {
            throw new ModelNotLoadableException(entry.Stage, entry.Name, e);
        }
        lock (_lock)
        {
            entry.Bytes = bytes;
            _residentBytes += bytes;
        }
        LogLoaded(entry.Stage, entry.Name, path, Inference.DType.ToString(), ModelFootprint.Format(bytes), watch.Elapsed.TotalSeconds);
        var tags = ModelTags(entry);
        WuerstchenTelemetry.ModelLoads.Add(1, tags);
        WuerstchenTelemetry.ModelLoadDuration.Record(watch.Elapsed.TotalSeconds, tags);
        return pipeline;
    }

    /// <summary>What another attempt would fail on again: the model's files, not the storage or memory they came through.</summary>
    private static bool IsPermanentLoadFailure(Exception e) =>
        e is UnknownModelException or ModelConfigException or Wuerstchen.Models.IO.SafetensorsFormatException or InvalidDataException
            or FileNotFoundException or DirectoryNotFoundException or System.Text.Json.JsonException;

    /// <summary>
    /// Takes idle loaded models, least recently used first, out of the table until <paramref name="incoming"/> more
    /// bytes fit the budget (or nothing idle is left); the caller unloads them outside the lock.
    /// </summary>
    private List<Resident> EvictIdle(long incoming, Resident except)
    {
        var evicted = new List<Resident>();
        while (_residentBytes + incoming > BudgetBytes)
        {
            var victim = _resident.Values
                .Where(r => r != except && r.Users == 0 && r.Pipeline is not null)
                .MinBy(r => r.LastUsed);
            if (victim is null)
                break;
            _resident.Remove(victim.Key);
            _residentBytes -= victim.Bytes;
            evicted.Add(victim);
        }
        return evicted;
    }

    /// <summary>Frees models taken out of the table: nobody uses them and nobody can find them any more.</summary>
    private void Unload(List<Resident> evicted)
    {
        foreach (var victim in evicted)
        {
            victim.Pipeline!.Dispose();
            victim.Pipeline = null;
            LogUnloaded(victim.Stage, victim.Name, ModelFootprint.Format(victim.Bytes), ModelFootprint.Format(BudgetBytes));
            WuerstchenTelemetry.ModelEvictions.Add(1, ModelTags(victim));
        }
    }

    private static TagList ModelTags(Resident entry) =>
        new() { { WuerstchenTelemetry.Tags.Stage, entry.Stage }, { WuerstchenTelemetry.Tags.Model, entry.Name } };

    private static InferenceOptions InferenceFrom(ModelOptions options)
    {
        Wuerstchen.Models.Runtime.TorchRuntime.EnsureNativesLoaded();
        var device = options.Device == "cuda" ? InitializeCuda() : torch.CPU;
        var dtype = options.Precision switch
        {
            "bfloat16" => torch.ScalarType.BFloat16,
            "float16" => torch.ScalarType.Float16,
            _ => torch.ScalarType.Float32,
        };
        var inference = new InferenceOptions { Device = device, DType = dtype, DecodeBatch = DeviceProfile.For(options).DecodeBatch };
        Wuerstchen.Models.Runtime.TorchRuntime.ConfigureMath(inference);
        return inference;
    }

    private static torch.Device InitializeCuda()
    {
        torch.InitializeDeviceType(DeviceType.CUDA);
        if (!torch.cuda.is_available())
            throw new InvalidOperationException($"{ModelOptions.Section}:Device is cuda but no CUDA device is available to LibTorch.");
        return torch.CUDA;
    }

    /// <summary>
    /// Frees every pipeline once no caller is inside it, so a shutdown never frees native memory a running stage still
    /// uses (one still in use after a wait is left to the finalizers); later callers get <see cref="ObjectDisposedException"/>.
    /// </summary>
    public void Dispose()
    {
        Resident[] all;
        lock (_lock)
        {
            if (_disposed)
                return;
            _disposed = true;
            _residentGauge.Dispose();
            all = _resident.Values.ToArray();
            _resident.Clear();
            _residentBytes = 0;
        }
        foreach (var entry in all)
        {
            if (!entry.Gate.Wait(Resident.DisposeWait))
                continue;
            entry.Pipeline?.Dispose();
            entry.Pipeline = null;
            entry.Gate.Release();
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Loaded {Stage} model {ModelName} from {ModelPath} as {Precision} ({Size}) in {Seconds:F1} s")]
    private partial void LogLoaded(string stage, string modelName, string modelPath, string precision, string size, double seconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "Unloaded {Stage} model {ModelName} ({Size}) to stay within the model memory budget of {Budget}")]
    private partial void LogUnloaded(string stage, string modelName, string size, string budget);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Loading {Stage} model {ModelName} ({Size}) brings resident models to {Resident}, over the budget of {Budget}: the others are in use")]
    private partial void LogOverBudget(string stage, string modelName, string size, string resident, string budget);

    /// <summary>One model of one stage: its pipeline once loaded, who uses it, and when it was last used.</summary>
    private sealed class Resident(string key, string stage, string name)
    {
        /// <summary>How long disposing waits for a caller still inside the pipeline (an activity the host did not wait for).</summary>
        public static readonly TimeSpan DisposeWait = TimeSpan.FromMinutes(1);

        public string Key { get; } = key;
        public string Stage { get; } = stage;
        public string Name { get; } = name;

        /// <summary>One caller inside the pipeline at a time; loading happens under it too.</summary>
        public SemaphoreSlim Gate { get; } = new(1, 1);

        /// <summary>Callers inside or waiting (guarded by the host's lock).</summary>
        public int Users { get; set; }

        public long LastUsed { get; set; }
        public long Bytes { get; set; }
        public IDisposable? Pipeline { get; set; }
    }
}
